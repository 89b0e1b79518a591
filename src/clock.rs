//! The wall clock, in one place. Everything that reads it (agents stamping data, the
//! console's event loop) calls this; what renders and derives is handed the time instead.

/// Milliseconds since the Unix epoch (0 if the clock is before 1970).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
