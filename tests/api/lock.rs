//! A second server on the same SQLite file is refused with a clear message; other tools
//! (the seeder) may still use the file.

use crate::helpers::*;
use watchpost::app::App;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_server_on_one_sqlite_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/locked.db", dir.path().display());
    let first = App::build(test_settings(&url)).await.expect("first server");
    let err = match App::build(test_settings(&url)).await {
        Ok(_) => panic!("a second server was allowed on the same SQLite file"),
        Err(e) => format!("{e:#}"),
    };
    assert!(err.contains("another watchpost server"), "{err}");
    assert!(err.contains("PostgreSQL"), "{err}");

    // Once the first one is gone, the file is free again.
    drop(first);
    App::build(test_settings(&url))
        .await
        .expect("server after the first stopped");
}
