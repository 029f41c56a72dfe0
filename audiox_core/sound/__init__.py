"""The sound: audio in and out, the timeline, the mix and master, loudness, true peak, limiter, ducking."""
