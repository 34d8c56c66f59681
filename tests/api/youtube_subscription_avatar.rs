//! `GET /api/v1/youtube/subscriptions/{id}/avatar`: the channel's `poster.jpg` from the
//! subscriptions root, for the owner and admins only, and a 404 (never a file from elsewhere)
//! when there is no title yet, no poster, or the poster is a link out of the root.

use axum::http::StatusCode;
use medianest::youtube::{layout, subscriptions_root};
use serde_json::json;

use crate::support::{assert_error, call, file_db, insert_user, new_session, test_state_with_db};

/// Bytes that start like a JPEG, so the test sees the file's own content come back.
const POSTER: &[u8] = b"\xff\xd8\xff\xe0 a channel avatar";

#[tokio::test]
async fn the_avatar_is_the_channels_poster_for_its_owner_and_admins() {
    let download_dir = tempfile::tempdir().unwrap();
    let dir = download_dir.path().to_owned();
    let t = test_state_with_db(|c| c.youtube.download_dir = Some(dir), file_db);
    let app = t.router();
    let admin_id = insert_user(&t.state, "admin", None, "admin", None).await;
    let admin = new_session(&t.state, &admin_id).await.token;
    let ann_id = insert_user(&t.state, "ann", None, "user", None).await;
    let ann = new_session(&t.state, &ann_id).await.token;
    let bob_id = insert_user(&t.state, "bob", None, "user", None).await;
    let bob = new_session(&t.state, &bob_id).await.token;

    let r = call("POST", "/api/v1/youtube/subscriptions")
        .bearer(&ann)
        .json(json!({"url": "https://www.youtube.com/@avatars"}))
        .send(&app)
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let id = r.json()["data"]["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/youtube/subscriptions/{id}/avatar");
    let get = |token: &str| call("GET", &path).bearer(token).send(&app);

    // Before the first check there is no title, so no channel folder to look in.
    assert_error(&get(&ann).await, StatusCode::NOT_FOUND, "NOT_FOUND");

    // The check named it; the downloads have not saved its poster yet.
    let title = "Avatar Tests: the / channel";
    let (sid, stitle) = (id.clone(), title.to_owned());
    t.state
        .db()
        .write(move |tx| {
            tx.execute(
                "UPDATE youtube_subscriptions SET title = ?2 WHERE id = ?1",
                rusqlite::params![sid, stitle],
            )?;
            Ok(())
        })
        .await
        .unwrap();
    assert_error(&get(&admin).await, StatusCode::NOT_FOUND, "NOT_FOUND");

    // The poster where the downloads put it: the channel folder's name is made safe.
    let root = subscriptions_root(t.state.config());
    let folder = root.join(layout::channel_folder(title));
    assert!(folder.starts_with(&root) && folder != root, "{folder:?}");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(folder.join("poster.jpg"), POSTER).unwrap();
    for token in [&ann, &admin] {
        let r = get(token).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        assert_eq!(r.header("content-type"), Some("image/jpeg"));
        assert_eq!(r.header("cache-control"), Some("private, max-age=3600"));
        assert_eq!(&r.body[..], POSTER);
    }
    // Someone else's subscription is not confirmed to exist.
    assert_error(&get(&bob).await, StatusCode::NOT_FOUND, "NOT_FOUND");
    assert_eq!(
        call("GET", &path).send(&app).await.status,
        StatusCode::UNAUTHORIZED
    );

    // A poster that is a link to a file outside the root is not followed.
    let outside = download_dir.path().join("outside.jpg");
    std::fs::write(&outside, b"not an avatar").unwrap();
    std::fs::remove_file(folder.join("poster.jpg")).unwrap();
    std::os::unix::fs::symlink(&outside, folder.join("poster.jpg")).unwrap();
    assert_error(&get(&admin).await, StatusCode::NOT_FOUND, "NOT_FOUND");

    // An unknown id is a 404 too.
    let r = call("GET", "/api/v1/youtube/subscriptions/nope/avatar")
        .bearer(&admin)
        .send(&app)
        .await;
    assert_error(&r, StatusCode::NOT_FOUND, "NOT_FOUND");
}
