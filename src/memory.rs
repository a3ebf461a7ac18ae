//! What memory costs, for the estimates the memory budget (`--memcap`) is kept with.

/// What an allocation of `bytes` takes from the allocator, jemalloc (the binary's global
/// allocator): its size class, which has no header. The classes are 8, then multiples of 16 up
/// to 128, then four to each doubling (160, 192, 224, 256, 320, ...), pages included.
pub const fn allocation(bytes: usize) -> usize {
    if bytes == 0 {
        return 0;
    }
    if bytes <= 8 {
        return 8;
    }
    if bytes <= 128 {
        return bytes.next_multiple_of(16);
    }
    // A quarter of the power of two below the size.
    let spacing = 1 << (usize::BITS - (bytes - 1).leading_zeros() - 3);
    bytes.next_multiple_of(spacing)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_to_jemalloc_size_classes() {
        assert_eq!(
            [
                0, 1, 9, 24, 25, 128, 129, 160, 161, 296, 1025, 5000, 16385, 262_144
            ]
            .map(allocation),
            [
                0, 8, 16, 32, 32, 128, 160, 160, 192, 320, 1280, 5120, 20480, 262_144
            ]
        );
    }
}
