//! The per-process test cluster.

use keyinfra_embedded_pg::{shared_throwaway_cluster, throwaway_root};

use crate::psql;

#[test]
fn the_shared_cluster_is_one_instance_and_accepts_connections() {
    let first = shared_throwaway_cluster().unwrap();
    let second = shared_throwaway_cluster().unwrap();
    assert!(std::ptr::eq(first, second));
    assert!(
        first.pgdata().starts_with(
            throwaway_root()
                .canonicalize()
                .unwrap()
                .join(std::process::id().to_string())
        )
    );
    assert_eq!(psql(first, "select 1"), "1");
    assert!(
        first
            .database_url("keyinfra_test")
            .contains("/keyinfra_test?host=/")
    );
}
