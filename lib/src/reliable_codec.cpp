// Reliable-link message codec (filled in by the reliable-link work).
