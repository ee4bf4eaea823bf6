//! [`LowWater`]: replies read in batches through the socket's receive low-water mark.

use std::io;

/// Replies read in batches: the receive low-water mark (`SO_RCVLOWAT`) of a writer's TCP
/// socket, given to [`Writer::set_low_water`](super::Writer::set_low_water) for a writer
/// over that very socket.
///
/// A target answers a pipeline in many small writes (one per turn of its event loop, a few
/// dozen `+OK` each), and a writer woken for every one of them spends more CPU on waking
/// than on the replies. While the writer waits for room in its window (or for everything to
/// be answered) and has nothing left to write, it asks the kernel to wake it only once a
/// number of reply bytes have arrived: the smallest size of all the replies due but one
/// (3 bytes each: RESP3's `_\r\n`; `+OK\r\n` is 5, so a full window of `+OK`s wakes the
/// writer when about 60% of it was answered and the target still has the rest to work
/// on), at most 16 KiB, rounded down (to a multiple of 256 bytes, or a power of two below
/// that) so that the mark seldom changes: one system call per change. Those bytes are
/// sure to come: every command in flight is answered, the replies already read were
/// consumed, and a reply cut by the last read has at least one byte still to come; so the
/// wait never outlasts the replies. A closed or failed connection wakes the writer whatever
/// the mark. A writer waiting for one outcome sets no mark.
///
/// Lowering the mark while data below the old one waits in the socket must wake the
/// waiter: Linux does so since 4.19 (`tcp_set_rcvlowat` re-checks), so the mark is only
/// set on Linux 4.19 or later (read from `/proc/sys/kernel/osrelease`), and never under
/// TLS (the socket then carries records, and a record read in part holds replies not yet
/// decrypted). A command answered only later (a blocking one) would hold back the wake for
/// the replies after it: the engine sends none; a custom tool sending them turns the mark
/// off (`Writer::set_low_water(None)`).
///
/// Measured on the bench file (`import` into Redis 7.0, 1.1 M keys, 2 cores): the writer's
/// wakes 5.9 k → 3.2 k, the tool's CPU time −4% to −6% in same-run comparisons
/// (benches/README.md); no change measured for the incremental phase.
#[derive(Debug)]
pub struct LowWater {
    #[cfg(target_os = "linux")]
    fd: std::os::fd::RawFd,
    /// The mark last set (the kernel's default: 1).
    current: usize,
    /// The first error setting it: then no more attempts.
    failed: bool,
}

/// The highest mark set, in bytes.
const MAX_MARK: usize = 16 << 10;

/// The smallest reply in bytes (RESP3's null, `_\r\n`).
const MIN_REPLY: usize = 3;

impl LowWater {
    /// For a writer over `tcp` itself (the bytes on the socket are the replies: not a TLS
    /// stream over it). The mark refers to the socket, not to `tcp`'s lifetime: give it to
    /// the writer that owns the stream. `None` where the mark cannot be used safely (not
    /// Linux, or a Linux before 4.19).
    pub fn of(tcp: &tokio::net::TcpStream) -> Option<LowWater> {
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            kernel_lowers_safely().then(|| LowWater {
                fd: tcp.as_raw_fd(),
                current: 1,
                failed: false,
            })
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = tcp;
            None
        }
    }

    /// The mark for a writer about to wait with `awaiting` replies due, `unsent` bytes not
    /// yet written and a window of `window` commands (the mark never asks for more than a
    /// full window's smallest replies): see [`LowWater`]; 1 (the
    /// kernel's default: wake for any byte) while anything is unsent (a command not yet
    /// written has no reply coming) or fewer than two replies are due.
    pub(crate) fn mark_for(awaiting: usize, unsent: usize, window: usize) -> usize {
        if unsent > 0 || awaiting < 2 {
            return 1;
        }
        let cap = (MIN_REPLY * window).clamp(1, MAX_MARK);
        let bound = (MIN_REPLY * (awaiting - 1)).clamp(1, cap);
        // Rounded down (a power of two below 256, a multiple of 256 above): still within the
        // bound, and the same mark for a window that refills to the same size.
        if bound < 256 {
            1 << bound.ilog2()
        } else {
            bound & !255
        }
    }

    /// Sets the mark (a system call only when it changes). A refusal turns the mark off
    /// for good (the writer then wakes for every reply, as without one).
    pub(crate) fn set(&mut self, mark: usize) {
        if self.failed || mark == self.current {
            return;
        }
        match self.apply(mark) {
            Ok(()) => self.current = mark,
            Err(e) => {
                tracing::debug!(target: "migrate", "SO_RCVLOWAT refused ({e}): replies read as they come");
                self.failed = true;
                if self.current != 1 && self.apply(1).is_ok() {
                    self.current = 1;
                }
            }
        }
    }

    /// Back to the kernel's default (before the stream is handed back).
    pub(crate) fn clear(&mut self) {
        if self.current != 1 && self.apply(1).is_ok() {
            self.current = 1;
        }
    }

    #[cfg(target_os = "linux")]
    #[allow(unsafe_code)]
    fn apply(&self, mark: usize) -> io::Result<()> {
        let value = libc::c_int::try_from(mark).unwrap_or(libc::c_int::MAX);
        // SAFETY: `setsockopt` reads `size_of::<c_int>()` bytes from a pointer to a live
        // `c_int` on the stack; it writes nothing. A stale or foreign descriptor makes it
        // fail (EBADF, ENOTSOCK) or set the option on that socket: no memory is involved.
        let r = unsafe {
            libc::setsockopt(
                self.fd,
                libc::SOL_SOCKET,
                libc::SO_RCVLOWAT,
                (&value as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if r == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    #[cfg(not(target_os = "linux"))]
    fn apply(&self, _mark: usize) -> io::Result<()> {
        Err(io::ErrorKind::Unsupported.into())
    }
}

/// Whether the running kernel wakes a waiter when the mark is lowered below the data
/// already queued (Linux 4.19+), read once.
#[cfg(target_os = "linux")]
fn kernel_lowers_safely() -> bool {
    static SAFE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *SAFE.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .ok()
            .and_then(|r| release_at_least(&r, (4, 19)))
            .unwrap_or(false)
    })
}

/// Whether a kernel release (`6.18.44-fc`, `4.18.0-553.el8_10.x86_64`) is at least `min`;
/// `None` when it does not parse.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
fn release_at_least(release: &str, min: (u32, u32)) -> Option<bool> {
    let mut parts = release.trim().split(|c: char| !c.is_ascii_digit());
    let major: u32 = parts.next()?.parse().ok()?;
    let minor: u32 = parts.next()?.parse().ok()?;
    Some((major, minor) >= min)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mark_never_waits_for_more_than_the_replies_due_can_bring() {
        assert_eq!(LowWater::mark_for(0, 0, 1024), 1);
        assert_eq!(LowWater::mark_for(1, 0, 1024), 1);
        assert_eq!(LowWater::mark_for(2, 0, 1024), 2);
        assert_eq!(
            LowWater::mark_for(1024, 0, 1024),
            2816,
            "3 x 1023, rounded down"
        );
        assert_eq!(LowWater::mark_for(100, 0, 1024), 256);
        assert_eq!(LowWater::mark_for(50, 0, 1024), 128);
        assert_eq!(
            LowWater::mark_for(1024, 1, 1024),
            1,
            "output not written: no mark"
        );
        assert_eq!(LowWater::mark_for(1 << 20, 0, 1 << 20), MAX_MARK);
        for window in [1, 2, 3, 16, 1000, 1024, 4096] {
            for n in 2..3000 {
                let mark = LowWater::mark_for(n, 0, window);
                // Every reply due but one, at its smallest, brings at least the mark.
                assert!(mark <= MIN_REPLY * (n - 1), "{n} {window}");
                assert!(mark <= (MIN_REPLY * window).max(1), "{n} {window}");
                assert!(mark.is_power_of_two() || mark % 256 == 0, "{mark}");
            }
        }
    }

    /// What the mark's safety rests on, checked on the running kernel: bytes below the mark
    /// wake nobody; lowering the mark below them wakes the waiting reader (Linux 4.19+),
    /// and a non-blocking read then gets them all.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn lowering_the_mark_wakes_a_reader_for_bytes_already_queued() {
        use std::time::Duration;
        use tokio::io::AsyncWriteExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let client = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (mut peer, _) = listener.accept().await.unwrap();
        let Some(mut lw) = LowWater::of(&client) else {
            return; // A kernel before 4.19: the mark is never used there.
        };
        lw.set(1000);
        peer.write_all(b"+PONG\r\n").await.unwrap();
        let quiet = tokio::time::timeout(Duration::from_millis(100), client.readable()).await;
        assert!(
            quiet.is_err(),
            "7 bytes under a mark of 1000 woke the reader"
        );
        lw.set(4);
        tokio::time::timeout(Duration::from_secs(5), client.readable())
            .await
            .expect("lowering the mark under the queued bytes must wake the reader")
            .unwrap();
        let mut buf = [0u8; 64];
        assert_eq!(client.try_read(&mut buf).unwrap(), 7);
        lw.clear();
        assert_eq!(lw.current, 1);
    }

    #[test]
    fn kernel_releases_parse() {
        assert_eq!(release_at_least("6.18.44-fc-v657\n", (4, 19)), Some(true));
        assert_eq!(release_at_least("4.19.0", (4, 19)), Some(true));
        assert_eq!(
            release_at_least("4.18.0-553.el8_10.x86_64", (4, 19)),
            Some(false)
        );
        assert_eq!(
            release_at_least("3.10.0-1160.el7.x86_64", (4, 19)),
            Some(false)
        );
        assert_eq!(release_at_least("5", (4, 19)), None);
        assert_eq!(release_at_least("", (4, 19)), None);
    }
}
