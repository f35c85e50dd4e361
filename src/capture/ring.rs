//! Reads the BPF ring buffer straight from its memory map, publishing how far it read
//! once per batch. libbpf's reader (and so libbpf-rs's `RingBuffer`) stores the consumer
//! position after every record; every `bpf_ringbuf_reserve` in the kernel reads that
//! position, so while dnsdoc drained, each reservation on the other CPU missed on a
//! cache line dnsdoc had just written. The layout is the kernel's ABI
//! (`kernel/bpf/ringbuf.c`, libbpf's `ringbuf.c`): one writable page holding the
//! consumer position, one read-only page holding the producer position, then the data
//! pages mapped twice in a row, so a record that wraps around reads as one slice.
//! Each record starts with an 8-byte header: its length, with a busy bit while the
//! producer still writes it and a discard bit for a record given up; records are
//! 8-byte aligned.

use std::num::NonZeroUsize;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use anyhow::{Context, Result};
use nix::sys::mman::{mmap, munmap, MapFlags, ProtFlags};

const BUSY_BIT: u32 = 1 << 31;
const DISCARD_BIT: u32 = 1 << 30;
const HEADER_LEN: u64 = 8;

/// A mapped ring buffer map and the descriptor that keeps it alive (also what to poll).
pub struct RingReader {
    fd: OwnedFd,
    page: usize,
    /// Data size: a power of two.
    size: u64,
    consumer: NonNull<libc::c_void>,
    producer: NonNull<libc::c_void>,
}

impl RingReader {
    /// Maps the ring buffer map `fd` of `size` data bytes (its max_entries).
    pub fn new(fd: BorrowedFd<'_>, size: u32) -> Result<Self> {
        let fd = fd.try_clone_to_owned().context("duplicating the ring buffer's fd")?;
        let page = page_size();
        let size = u64::from(size);
        let len = |n: usize| NonZeroUsize::new(n).expect("non-zero mapping");
        // SAFETY: a shared mapping of the map's first page, which the kernel lets the
        // consumer write (its position); the pointer is only used through atomics.
        let consumer = unsafe {
            mmap(
                None,
                len(page),
                ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                MapFlags::MAP_SHARED,
                &fd,
                0,
            )
        }
        .context("mapping the ring buffer's consumer page")?;
        // SAFETY: the producer page and the data pages twice, read-only, as the kernel
        // lays them out for every ring buffer map from offset one page.
        let producer = unsafe {
            mmap(
                None,
                len(page + 2 * size as usize),
                ProtFlags::PROT_READ,
                MapFlags::MAP_SHARED,
                &fd,
                page as i64,
            )
        };
        let producer = match producer {
            Ok(p) => p,
            Err(e) => {
                // SAFETY: unmapping the page mapped just above, used nowhere else.
                unsafe { munmap(consumer, page).ok() };
                return Err(e).context("mapping the ring buffer's data pages");
            }
        };
        Ok(RingReader {
            fd,
            page,
            size,
            consumer,
            producer,
        })
    }

    /// The descriptor to poll for POLLIN: the kernel signals it when a producer wakes
    /// the consumer.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    fn consumer_pos(&self) -> &AtomicU64 {
        // SAFETY: the consumer page is mapped for the reader's lifetime and starts with
        // the kernel's 8-byte-aligned `unsigned long consumer_pos`.
        unsafe { self.consumer.cast::<AtomicU64>().as_ref() }
    }

    fn producer_pos(&self) -> &AtomicU64 {
        // SAFETY: as above, for the producer page's `producer_pos`.
        unsafe { self.producer.cast::<AtomicU64>().as_ref() }
    }

    /// Calls `f` with each committed record, oldest first, up to `max` of them, then
    /// publishes the new consumer position once. Returns how many records it passed.
    pub fn consume(&self, max: usize, mut f: impl FnMut(&[u8])) -> usize {
        let mask = self.size - 1;
        // SAFETY: the data pages follow the producer page in the same mapping.
        let data = unsafe { self.producer.as_ptr().cast::<u8>().add(self.page) };
        let cons = self.consumer_pos();
        let mut pos = cons.load(Ordering::Relaxed);
        let mut n = 0;
        let mut prod = self.producer_pos().load(Ordering::Acquire);
        while n < max {
            if pos >= prod {
                // Records committed while we read the last ones.
                prod = self.producer_pos().load(Ordering::Acquire);
                if pos >= prod {
                    break;
                }
            }
            // SAFETY: `pos & mask` is inside the first copy of the data pages and the
            // header is 8-byte aligned; the kernel writes its length atomically.
            let hdr = unsafe { &*data.add((pos & mask) as usize).cast::<AtomicU32>() };
            let len = hdr.load(Ordering::Acquire);
            if len & BUSY_BIT != 0 {
                break; // still being written: the next poll takes it
            }
            let body = len & !(BUSY_BIT | DISCARD_BIT);
            if len & DISCARD_BIT == 0 {
                // SAFETY: a committed record of `body` bytes after its header; the data
                // pages are mapped twice, so it is contiguous even where it wraps.
                let rec = unsafe {
                    std::slice::from_raw_parts(
                        data.add(((pos & mask) + HEADER_LEN) as usize),
                        body as usize,
                    )
                };
                f(rec);
                n += 1;
            }
            pos += (u64::from(body) + HEADER_LEN + 7) & !7;
        }
        cons.store(pos, Ordering::Release);
        n
    }
}

impl Drop for RingReader {
    fn drop(&mut self) {
        // SAFETY: the two mappings made in `new`, with their lengths; nothing borrows
        // them past `self`.
        unsafe {
            munmap(self.consumer, self.page).ok();
            munmap(self.producer, self.page + 2 * self.size as usize).ok();
        }
    }
}

fn page_size() -> usize {
    nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .map_or(4096, |p| p as usize)
}
