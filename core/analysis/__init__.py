"""Pure analyses over model values: readiness, unblock plan, fold-back, release diff, usage."""
