// Statistics: counters, latency histogram, JSON snapshot (filled in by the patterns work).
