//! The kernel clock's discipline as adjtimex(2) reports it: the fact ntp.sync judges and
//! the console compares across nodes. (The wall clock is read by the top-level `clock`.)

/// What adjtimex(2) reports about the kernel clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
pub struct ClockState {
    /// The syscall's return value: TIME_OK (0) … TIME_ERROR (5).
    pub state: i32,
    /// `timex.status` flags; STA_UNSYNC (0x40) means not synchronised.
    pub status: i32,
    #[serde(default)]
    pub offset_ns: i64,
    pub maxerror_us: i64,
    pub esterror_us: i64,
}

pub const STA_UNSYNC: i32 = 0x0040;
pub const TIME_ERROR: i32 = 5;

impl ClockState {
    pub fn synchronised(&self) -> bool {
        self.state != TIME_ERROR && self.status & STA_UNSYNC == 0
    }
}
