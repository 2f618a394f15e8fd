//! A PostgreSQL database of its own per test, on the suite's server (`NUBIS_TEST_DATABASE_URL`,
//! default `postgres://postgres@127.0.0.1:5432/test`), dropped on drop even when the test
//! panics. An unreachable server fails the test: PostgreSQL cases are never skipped.
//! (The store crate's own tests keep a copy: this crate depends on the store.)

/// The suite's PostgreSQL server.
pub fn server_url() -> String {
    std::env::var("NUBIS_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// `url` with its database name replaced.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (url, String::new()),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let host_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    format!("{}/{name}{query}", &base[..host_end])
}

/// A connection to the server's own database (to make and drop test databases).
pub async fn admin_client() -> tokio_postgres::Client {
    connect(&server_url()).await
}

/// A connection to `url`, its connection task spawned on the current runtime.
pub async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at {url} (NUBIS_TEST_DATABASE_URL): {e}"));
    tokio::spawn(conn);
    client
}

/// A database of its own, with a random name, dropped on drop.
pub struct PgDb {
    pub name: String,
    pub url: String,
}

impl PgDb {
    pub async fn create() -> Self {
        let name = format!("nubis_test_{}", uuid::Uuid::new_v4().simple());
        admin_client()
            .await
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
        PgDb {
            url: with_database(&server_url(), &name),
            name,
        }
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        // Drop runs inside the test's runtime, which cannot be blocked on: a thread of its own.
        let done = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?
                .block_on(async { admin_client().await.batch_execute(&sql).await })
                .map_err(|e| e.to_string())
        })
        .join();
        if !matches!(done, Ok(Ok(()))) {
            eprintln!("could not drop test database {}: {done:?}", self.name);
        }
    }
}
