//! One test's database, for the tests that run on SQLite and PostgreSQL alike: a SQLite
//! file in a folder of its own, or a PostgreSQL schema of its own.
#![allow(dead_code)] // each test binary uses its own subset

use std::future::Future;
use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use libtest_mimic::{Failed, Trial};
use suno_callback::inbox::sqlx::{self, Connection as _};
use suno_callback::inbox::{Inbox, InboxBuilder};
use suno_callback::store::ClaimToken;

pub const REQUIRE: &str = "SUNO_CALLBACK_REQUIRE_POSTGRES";

pub fn postgres_url() -> String {
    std::env::var("SUNO_CALLBACK_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// Whether something listens at the PostgreSQL URL's host and port.
pub fn postgres_answers(url: &str) -> bool {
    let authority = url
        .split("://")
        .nth(1)
        .map(|rest| rest.rsplit('@').next().unwrap_or(rest))
        .and_then(|rest| rest.split('/').next())
        .unwrap_or("127.0.0.1:5432");
    let Ok(addr) = authority.parse::<std::net::SocketAddr>() else {
        return TcpStream::connect(authority).is_ok();
    };
    TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Sqlite,
    Postgres,
}

/// One test's database: a SQLite file in its own folder, or a PostgreSQL schema.
pub struct Db {
    pub kind: Kind,
    pub name: String,
    pub folder: PathBuf,
}

impl Db {
    pub async fn new(kind: Kind) -> Self {
        let name = format!("suno_inbox_test_{}", ClaimToken::new_unique());
        let folder = std::env::temp_dir().join(&name);
        match kind {
            Kind::Sqlite => std::fs::create_dir_all(&folder).expect("temp folder"),
            Kind::Postgres => {
                let mut connection = sqlx::PgConnection::connect(&postgres_url())
                    .await
                    .expect("connect to PostgreSQL");
                sqlx::raw_sql(&format!("CREATE SCHEMA {name}"))
                    .execute(&mut connection)
                    .await
                    .expect("create schema");
            }
        }
        Self { kind, name, folder }
    }

    pub fn url(&self) -> String {
        match self.kind {
            Kind::Sqlite => format!("sqlite://{}", self.folder.join("inbox.db").display()),
            Kind::Postgres => format!(
                "{}?options=-c%20search_path%3D{}",
                postgres_url(),
                self.name
            ),
        }
    }

    pub async fn inbox(&self, builder: InboxBuilder) -> Inbox {
        builder
            .connect(&self.url())
            .await
            .expect("connect the inbox")
    }

    /// Runs SQL (several statements) on the test's database.
    pub async fn exec(&self, sql: &str) {
        match self.kind {
            Kind::Sqlite => {
                let mut connection = sqlx::SqliteConnection::connect(&self.url())
                    .await
                    .expect("connect");
                sqlx::raw_sql(sql)
                    .execute(&mut connection)
                    .await
                    .expect(sql);
            }
            Kind::Postgres => {
                let mut connection = sqlx::PgConnection::connect(&self.url())
                    .await
                    .expect("connect");
                sqlx::raw_sql(sql)
                    .execute(&mut connection)
                    .await
                    .expect(sql);
            }
        }
    }

    /// The SQL type of a body column.
    pub fn blob_type(&self) -> &'static str {
        match self.kind {
            Kind::Sqlite => "BLOB",
            Kind::Postgres => "BYTEA",
        }
    }

    /// An SQL expression of the current time in Unix milliseconds.
    pub fn now_ms_sql(&self) -> &'static str {
        match self.kind {
            Kind::Sqlite => "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)",
            Kind::Postgres => "floor(extract(epoch from now()) * 1000)::bigint",
        }
    }

    /// The first column of the first row of a query returning one integer.
    pub async fn count(&self, sql: &str) -> i64 {
        use sqlx::Row as _;
        match self.kind {
            Kind::Sqlite => {
                let mut connection = sqlx::SqliteConnection::connect(&self.url())
                    .await
                    .expect("connect");
                sqlx::query(sql)
                    .fetch_one(&mut connection)
                    .await
                    .expect(sql)
                    .get(0)
            }
            Kind::Postgres => {
                let mut connection = sqlx::PgConnection::connect(&self.url())
                    .await
                    .expect("connect");
                sqlx::query(sql)
                    .fetch_one(&mut connection)
                    .await
                    .expect(sql)
                    .get(0)
            }
        }
    }

    pub async fn drop_all(self) {
        match self.kind {
            Kind::Sqlite => {
                let _ = std::fs::remove_dir_all(&self.folder);
            }
            Kind::Postgres => {
                if let Ok(mut connection) = sqlx::PgConnection::connect(&postgres_url()).await {
                    let _ = sqlx::raw_sql(&format!("DROP SCHEMA {} CASCADE", self.name))
                        .execute(&mut connection)
                        .await;
                }
            }
        }
    }
}

/// One test on a database of its own, dropped afterwards.
pub fn trial<F, Fut>(kind: Kind, name: &str, test: F) -> Trial
where
    F: FnOnce(Arc<Db>) -> Fut + Send + 'static,
    Fut: Future<Output = ()>,
{
    let label = match kind {
        Kind::Sqlite => "sqlite",
        Kind::Postgres => "postgres",
    };
    Trial::test(format!("{label}::{name}"), move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|error| Failed::from(error.to_string()))?;
        runtime.block_on(async {
            let db = Arc::new(Db::new(kind).await);
            test(Arc::clone(&db)).await;
            if let Ok(db) = Arc::try_unwrap(db) {
                db.drop_all().await;
            }
        });
        Ok(())
    })
}

/// One trial per test function, on databases of `kind`.
#[macro_export]
macro_rules! suite {
    ($kind:expr; $($test:ident),* $(,)?) => {
        vec![$(
            $crate::inbox_db::trial($kind, stringify!($test), |db| async move { $test(&db).await }),
        )*]
    };
}
