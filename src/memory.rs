//! What memory costs, for the estimates the memory budget (`--memcap`) is kept with.

/// What an allocation of `bytes` takes from the allocator: glibc's 8-byte chunk header, rounded
/// up to 16, and never less than its 32-byte smallest chunk.
pub const fn allocation(bytes: usize) -> usize {
    if bytes == 0 {
        return 0;
    }
    let chunk = (bytes + 8).next_multiple_of(16);
    if chunk < 32 { 32 } else { chunk }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_as_glibc_malloc_does() {
        assert_eq!(
            [0, 1, 24, 25, 40, 296].map(allocation),
            [0, 32, 32, 48, 48, 304]
        );
    }
}
