"""One reel's domain: cues, the cue sheet, direction, settings, names, preflight, review and the stages."""
