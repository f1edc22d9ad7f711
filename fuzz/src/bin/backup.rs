//! The backup reader, past age: the decrypted content of a backup file (header, frames of
//! binary COPY data, end marker), as `backup verify` and `backup restore` check it.

fn main() {
    afl::fuzz!(|data: &[u8]| {
        let _ = keyinfra_core::backup::check_plaintext(data);
    });
}
