//! [`WriterOptions`]: the writer's limits, as named configuration.

/// Limits and tuning of a [`Pipeline`](crate::Pipeline) / [`Writer`](crate::Writer).
///
/// The window (`max_in_flight`, `max_in_flight_bytes`) bounds what is sent but not yet
/// answered: a command counts from the moment it is accepted until its reply (for a command in
/// a transaction, its `+QUEUED`) has been read. When either bound is reached,
/// [`Pipeline::has_room`](crate::Pipeline::has_room) turns false and
/// [`Writer::send`](crate::Writer::send) waits, which is the backpressure that keeps the
/// migration's memory bounded. A single command larger than `max_in_flight_bytes` is still
/// accepted when the window is empty, so big values go through one at a time.
///
/// ```
/// use migrate_core::WriterOptions;
///
/// let opts = WriterOptions::default().with_max_in_flight(256).with_max_bulk_len(1 << 20);
/// assert_eq!(opts.max_in_flight, 256);
/// assert_eq!(opts.max_in_flight_bytes, 16 << 20);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct WriterOptions {
    /// Most commands awaiting a reply. Default 4096.
    pub max_in_flight: usize,
    /// Most encoded bytes of commands awaiting a reply. Default 16 MiB.
    pub max_in_flight_bytes: usize,
    /// Output buffered before [`Writer::send`](crate::Writer::send) writes it without being
    /// asked to flush: larger batches mean fewer system calls. Default 64 KiB.
    pub write_batch_bytes: usize,
    /// Longest argument the target accepts: its `proto-max-bulk-len` (default 512 MiB). A
    /// longer argument is refused before anything is sent (the server would drop the
    /// connection on it); split such values with [`chunk_items`](crate::chunk_items) or
    /// [`chunk_string`](crate::chunk_string).
    pub max_bulk_len: u64,
    /// Arguments at least this long, given as [`bytes::Bytes`] to
    /// [`Pipeline::push_bytes`](crate::Pipeline::push_bytes), are queued for sending by
    /// reference instead of being copied into the output buffer. Default 16 KiB.
    pub zero_copy_min: usize,
}

impl WriterOptions {
    /// Default [`max_in_flight`](Self::max_in_flight): 4096 (it was 1024: with 4096 the
    /// writer wakes a quarter as often for the same replies; −5% of the tool's CPU for an
    /// `import` of the bench file).
    pub const DEFAULT_MAX_IN_FLIGHT: usize = 4096;
    /// Default [`max_in_flight_bytes`](Self::max_in_flight_bytes): 16 MiB.
    pub const DEFAULT_MAX_IN_FLIGHT_BYTES: usize = 16 << 20;
    /// Default [`write_batch_bytes`](Self::write_batch_bytes): 64 KiB.
    pub const DEFAULT_WRITE_BATCH_BYTES: usize = 64 << 10;
    /// Redis's default `proto-max-bulk-len`: 512 MiB.
    pub const DEFAULT_MAX_BULK_LEN: u64 = 512 << 20;
    /// Default [`zero_copy_min`](Self::zero_copy_min): 16 KiB.
    pub const DEFAULT_ZERO_COPY_MIN: usize = 16 << 10;

    /// The defaults.
    pub const fn new() -> WriterOptions {
        WriterOptions {
            max_in_flight: Self::DEFAULT_MAX_IN_FLIGHT,
            max_in_flight_bytes: Self::DEFAULT_MAX_IN_FLIGHT_BYTES,
            write_batch_bytes: Self::DEFAULT_WRITE_BATCH_BYTES,
            max_bulk_len: Self::DEFAULT_MAX_BULK_LEN,
            zero_copy_min: Self::DEFAULT_ZERO_COPY_MIN,
        }
    }

    /// Sets [`max_in_flight`](Self::max_in_flight) (at least 1).
    pub const fn with_max_in_flight(mut self, n: usize) -> Self {
        self.max_in_flight = if n == 0 { 1 } else { n };
        self
    }

    /// Sets [`max_in_flight_bytes`](Self::max_in_flight_bytes) (at least 1).
    pub const fn with_max_in_flight_bytes(mut self, n: usize) -> Self {
        self.max_in_flight_bytes = if n == 0 { 1 } else { n };
        self
    }

    /// Sets [`write_batch_bytes`](Self::write_batch_bytes).
    pub const fn with_write_batch_bytes(mut self, n: usize) -> Self {
        self.write_batch_bytes = n;
        self
    }

    /// Sets [`max_bulk_len`](Self::max_bulk_len).
    pub const fn with_max_bulk_len(mut self, n: u64) -> Self {
        self.max_bulk_len = n;
        self
    }

    /// Sets [`zero_copy_min`](Self::zero_copy_min).
    pub const fn with_zero_copy_min(mut self, n: usize) -> Self {
        self.zero_copy_min = n;
        self
    }
}

impl Default for WriterOptions {
    fn default() -> Self {
        Self::new()
    }
}
