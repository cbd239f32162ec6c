//! The `ultrasched` binary: all work is in [`ultrasched::cli::run`].

#[cfg(target_os = "linux")]
#[global_allocator]
static ALLOC: huge_pages::HugePageAlloc = huge_pages::HugePageAlloc;

fn main() {
    // Mesa's Vulkan drivers print "XDG_RUNTIME_DIR is invalid" on every adapter probe when the variable is
    // unset (CI, containers). Set it for this process only, before any thread starts.
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        std::env::set_var("XDG_RUNTIME_DIR", std::env::temp_dir());
    }
    if let Err(err) = ultrasched::cli::run() {
        eprintln!("Error: {err:#}");
        std::process::exit(ultrasched::error::exit_code(&err));
    }
}

/// Large allocations on transparent huge pages. A week of serving at UltraServer scale keeps hundreds of MB
/// of KV-cache maps and per-request arrays that it reads at random; on 4 KiB pages most of those reads also
/// miss the TLB, and that cost grows with the working set (one agentic service alone: 15.4 s at full size
/// against 3.1 s at a quarter, 4.95x; with huge pages 12.7 s against 3.2 s, 3.96x). Linux gives huge pages
/// only where asked (`/sys/kernel/mm/transparent_hugepage/enabled` = madvise, the usual default), so every
/// allocation of at least [`huge_pages::BIG`] bytes gets its own anonymous mapping advised with
/// `MADV_HUGEPAGE`, and grows with `mremap` (no copy); everything smaller goes to the system allocator.
/// Where huge pages are off, the advice is ignored and this is plain `mmap`, which is what glibc does for
/// such sizes anyway.
#[cfg(target_os = "linux")]
mod huge_pages {
    use std::alloc::{GlobalAlloc, Layout, System};

    /// Allocations from this size on are mapped on their own (two huge pages).
    pub const BIG: usize = 4 << 20;

    pub struct HugePageAlloc;

    fn big(size: usize, align: usize) -> bool {
        size >= BIG && align <= 4096
    }

    /// A fresh zeroed mapping of `size` bytes advised for huge pages, or null.
    unsafe fn map(size: usize) -> *mut u8 {
        let p = libc::mmap(
            std::ptr::null_mut(),
            size,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        if p == libc::MAP_FAILED {
            return std::ptr::null_mut();
        }
        libc::madvise(p, size, libc::MADV_HUGEPAGE); // advice: failure only means small pages
        p.cast()
    }

    unsafe impl GlobalAlloc for HugePageAlloc {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            if big(layout.size(), layout.align()) {
                map(layout.size())
            } else {
                System.alloc(layout)
            }
        }

        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            if big(layout.size(), layout.align()) {
                map(layout.size()) // anonymous mappings are zeroed
            } else {
                System.alloc_zeroed(layout)
            }
        }

        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            if big(layout.size(), layout.align()) {
                libc::munmap(ptr.cast(), layout.size());
            } else {
                System.dealloc(ptr, layout)
            }
        }

        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            let align = layout.align();
            match (big(layout.size(), align), big(new_size, align)) {
                (false, false) => System.realloc(ptr, layout, new_size),
                (true, true) => {
                    let p = libc::mremap(ptr.cast(), layout.size(), new_size, libc::MREMAP_MAYMOVE);
                    if p == libc::MAP_FAILED {
                        return std::ptr::null_mut();
                    }
                    libc::madvise(p, new_size, libc::MADV_HUGEPAGE);
                    p.cast()
                }
                _ => {
                    // Across the threshold: a new block of the other kind, the contents copied over.
                    let new_layout = Layout::from_size_align_unchecked(new_size, align);
                    let p = self.alloc(new_layout);
                    if !p.is_null() {
                        std::ptr::copy_nonoverlapping(ptr, p, layout.size().min(new_size));
                        self.dealloc(ptr, layout);
                    }
                    p
                }
            }
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        /// Every path keeps the contents: small, big, growing and shrinking across the threshold, zeroed.
        #[test]
        fn keeps_contents_across_sizes() {
            let a = HugePageAlloc;
            let sizes = [64, BIG - 8, BIG, 3 * BIG + 5, BIG + 1, 100, 2 * BIG];
            unsafe {
                let mut layout = Layout::from_size_align(sizes[0], 8).unwrap();
                let mut p = a.alloc(layout);
                assert!(!p.is_null());
                for i in 0..layout.size() {
                    *p.add(i) = (i % 251) as u8;
                }
                for &n in &sizes[1..] {
                    let keep = layout.size().min(n);
                    p = a.realloc(p, layout, n);
                    assert!(!p.is_null(), "realloc to {n}");
                    layout = Layout::from_size_align(n, 8).unwrap();
                    for i in (0..keep).step_by(4093) {
                        assert_eq!(*p.add(i), (i % 251) as u8, "byte {i} after realloc to {n}");
                    }
                    for i in keep..n {
                        *p.add(i) = (i % 251) as u8;
                    }
                }
                a.dealloc(p, layout);
                for n in [16, 3 * BIG] {
                    let l = Layout::from_size_align(n, 16).unwrap();
                    let z = a.alloc_zeroed(l);
                    assert!(!z.is_null());
                    assert!((0..n).step_by(1021).all(|i| *z.add(i) == 0), "zeroed {n}");
                    a.dealloc(z, l);
                }
            }
        }
    }
}
