"""What replicas of one gateway share through Redis: the link itself and backend cooldowns."""
