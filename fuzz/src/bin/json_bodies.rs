//! Every JSON request body of the API, through deserialisation and the checks that run
//! before the database (keyinfra_server::fuzzing).

fn main() {
    afl::fuzz!(|data: &[u8]| {
        let _ = keyinfra_server::fuzzing::request_bodies(data);
    });
}
