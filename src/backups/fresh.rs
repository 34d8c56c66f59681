//! `GET /admin/backup`: streams a consistent copy of the database.
//!
//! The copy is made with `VACUUM INTO` (one read transaction: one committed state, the writer is
//! never blocked) into a hidden file in the data directory (same disk as the database; the
//! system temp dir may be a small RAM disk). The blocking job opens the copy and unlinks it at
//! once, so the file disappears even if the client goes away (or the request times out) before
//! the download starts; the open handle keeps it readable until the stream ends. The copy is
//! streamed in chunks, never held in memory whole.

use std::path::PathBuf;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;
use tokio::io::AsyncReadExt as _;

use crate::auth::AdminUser;
use crate::error::{AppError, AppResult};
use crate::state::AppState;
use crate::time::rfc3339;

/// Bytes read per chunk of the response.
const CHUNK: usize = 64 * 1024;

/// `GET /admin/backup`: a fresh copy, not kept in `backup.dir`.
pub async fn download_backup(
    State(state): State<AppState>,
    _admin: AdminUser,
) -> AppResult<Response> {
    let target = state
        .data_dir()
        .path
        .join(format!(".backup-{}.db", uuid::Uuid::new_v4().simple()));
    let (file, size, leftover) = state
        .db()
        .run(move |conn| {
            let size = crate::db::backup_connection(conn, &target)?;
            let file = match std::fs::File::open(&target) {
                Ok(f) => f,
                Err(e) => {
                    let _ = std::fs::remove_file(&target);
                    return Err(AppError::internal(format!("open backup: {e}")));
                }
            };
            // On Unix the open handle keeps the unlinked file readable; elsewhere removing an
            // open file fails and the stream removes it when it ends.
            let leftover = std::fs::remove_file(&target).err().map(|_| target);
            Ok((file, size, leftover))
        })
        .await?;
    let date: String = rfc3339(state.clock().now_ms()).chars().take(10).collect();
    let disposition = format!("attachment; filename=\"medianest-{date}.db\"");
    let mut response =
        Body::from_stream(chunks(tokio::fs::File::from_std(file), leftover)).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/vnd.sqlite3"),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(response)
}

/// The file as a stream of chunks; removes `leftover` (if any) once the end is reached.
pub(crate) fn chunks(
    file: tokio::fs::File,
    leftover: Option<PathBuf>,
) -> impl Stream<Item = std::io::Result<Bytes>> {
    futures_util::stream::unfold(Some((file, leftover)), |state| async move {
        let (mut file, leftover) = state?;
        let mut buf = vec![0u8; CHUNK];
        match file.read(&mut buf).await {
            Ok(0) => {
                if let Some(path) = leftover {
                    let _ = tokio::fs::remove_file(path).await;
                }
                None
            }
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(Bytes::from(buf)), Some((file, leftover))))
            }
            Err(e) => {
                if let Some(path) = leftover {
                    let _ = tokio::fs::remove_file(path).await;
                }
                Some((Err(e), None))
            }
        }
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use axum::http::StatusCode;

    use crate::admin::testing::TestApp;

    #[tokio::test]
    async fn backup_is_a_valid_database_and_leaves_no_file() {
        let t = TestApp::new().await;
        let r = t.admin_get("/api/v1/admin/backup").await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(
            r.headers.get("content-type").unwrap(),
            "application/vnd.sqlite3"
        );
        let disposition = r
            .headers
            .get("content-disposition")
            .unwrap()
            .to_str()
            .unwrap();
        assert_eq!(
            disposition,
            format!(
                "attachment; filename=\"medianest-{}.db\"",
                &crate::time::rfc3339(crate::admin::testing::START_MS)[..10]
            )
        );
        assert!(r.bytes.starts_with(b"SQLite format 3\0"));

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("copy.db");
        std::fs::write(&path, &r.bytes).unwrap();
        let conn = rusqlite::Connection::open(&path).unwrap();
        let check: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(check, "ok");
        let admins: i64 = conn
            .query_row(
                "SELECT count(*) FROM users WHERE username = 'admin'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(admins, 1);

        let leftovers: Vec<_> = std::fs::read_dir(&t.state.data_dir().path)
            .unwrap()
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".backup") || n.ends_with(".partial"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");

        let user = t
            .add_user(
                "plain",
                None,
                "user",
                "active",
                crate::admin::testing::START_MS,
            )
            .await;
        let token = t.sign_in(&user).await;
        let r = t
            .call("GET", "/api/v1/admin/backup", Some(&token), None)
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
    }
}
