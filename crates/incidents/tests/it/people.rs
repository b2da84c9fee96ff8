//! Users, sessions and API tokens (what the web app's login uses), on both backends.

use chrono::{Duration, Utc};
use incidents::{Error, Store};

use crate::support::on_both_backends;

on_both_backends!(users_sessions_and_tokens);
on_both_backends!(tokens_expire_and_are_revoked_with_audit);

const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$c2VjcmV0aGFzaA";

async fn users_sessions_and_tokens(store: &Store, _url: &str) {
    // Users: created, found, listed by name; a taken name is refused.
    let carol = store
        .create_user("carol", HASH, "admin")
        .await
        .expect("carol");
    let bob = store.create_user("bob", HASH, "L1").await.expect("bob");
    assert_eq!((bob.role.as_str(), bob.disabled), ("l1", false));
    assert_eq!(
        store.user("carol").await.expect("user"),
        Some(carol.clone())
    );
    assert_eq!(store.user("nobody").await.expect("user"), None);
    let names: Vec<String> = store
        .users()
        .await
        .expect("users")
        .into_iter()
        .map(|u| u.username)
        .collect();
    assert_eq!(names, ["bob", "carol"]);
    match store.create_user("bob", HASH, "l2").await {
        Err(err @ Error::AlreadyExists { .. }) => {
            assert_eq!(err.to_string(), "user bob already exists")
        }
        other => panic!("duplicate user: {other:?}"),
    }

    // Secrets stay out of Debug and serialized forms.
    let shown = format!("{carol:?} {}", serde_json::to_string(&carol).expect("json"));
    assert!(
        !shown.contains(HASH) && shown.contains("<redacted>"),
        "{shown}"
    );

    // Sessions: valid until they expire; logout deletes.
    let later = Utc::now() + Duration::hours(8);
    let session = store
        .create_session("hash-of-cookie-1", "bob", later)
        .await
        .expect("session");
    assert_eq!(session.username, "bob");
    assert_eq!(
        session.expires_at.timestamp_millis(),
        later.timestamp_millis()
    );
    assert!(!format!("{session:?}").contains("hash-of-cookie-1"));
    assert_eq!(
        store.session("hash-of-cookie-1").await.expect("lookup"),
        Some(session)
    );
    assert_eq!(store.session("hash-of-other").await.expect("lookup"), None);
    match store
        .create_session("hash-of-cookie-1", "carol", later)
        .await
    {
        Err(err @ Error::AlreadyExists { .. }) => {
            assert!(!err.to_string().contains("hash-of-cookie-1"), "{err}");
        }
        other => panic!("reused session hash: {other:?}"),
    }
    store
        .create_session("hash-of-expired", "bob", Utc::now() - Duration::seconds(1))
        .await
        .expect("expired session");
    assert_eq!(
        store.session("hash-of-expired").await.expect("lookup"),
        None
    );
    assert_eq!(store.purge_expired_sessions().await.expect("purge"), 1);
    store
        .delete_session("hash-of-cookie-1")
        .await
        .expect("logout");
    assert_eq!(
        store.session("hash-of-cookie-1").await.expect("lookup"),
        None
    );
    store
        .delete_session("hash-of-cookie-1")
        .await
        .expect("logout twice is fine");

    // Disabling ends the user's sessions; enabling does not bring them back.
    store
        .create_session("hash-of-cookie-2", "bob", later)
        .await
        .expect("session");
    let disabled = store
        .set_user_disabled("bob", true, "carol")
        .await
        .expect("disable");
    assert!(disabled.disabled);
    assert_eq!(
        store.session("hash-of-cookie-2").await.expect("lookup"),
        None
    );
    assert!(
        !store
            .set_user_disabled("bob", false, "carol")
            .await
            .expect("enable")
            .disabled
    );

    // Password change ends sessions too.
    store
        .create_session("hash-of-cookie-3", "carol", later)
        .await
        .expect("session");
    store
        .set_user_password("carol", "$argon2id$new", "carol")
        .await
        .expect("password");
    assert_eq!(
        store.session("hash-of-cookie-3").await.expect("lookup"),
        None
    );
    assert_eq!(
        store
            .user("carol")
            .await
            .expect("user")
            .map(|u| u.password_hash),
        Some("$argon2id$new".to_owned())
    );

    // A role change ends the user's sessions and is audited with both roles; setting the same
    // role again changes nothing; unknown roles and users are refused without a change.
    store
        .create_session("hash-of-cookie-4", "bob", later)
        .await
        .expect("session");
    let promoted = store
        .set_user_role("bob", " L2 ", "carol")
        .await
        .expect("promote");
    assert_eq!(
        (promoted.username.as_str(), promoted.role.as_str()),
        ("bob", "l2")
    );
    assert_eq!(
        store.user("bob").await.expect("user"),
        Some(promoted.clone())
    );
    assert_eq!(
        store.session("hash-of-cookie-4").await.expect("lookup"),
        None
    );
    store
        .create_session("hash-of-cookie-5", "bob", later)
        .await
        .expect("session");
    assert_eq!(
        store
            .set_user_role("bob", "l2", "carol")
            .await
            .expect("same role"),
        promoted
    );
    assert!(
        store
            .session("hash-of-cookie-5")
            .await
            .expect("lookup")
            .is_some(),
        "an unchanged role keeps the sessions"
    );
    for (name, role, actor, want) in [
        (
            "bob",
            "root",
            "carol",
            "unknown role \"root\" (expected l1, l2, lead or admin)",
        ),
        ("bob", "", "carol", "unknown role"),
        ("nobody", "l1", "carol", "user nobody not found"),
        ("bob", "l1", " ", "actor must not be empty"),
    ] {
        match store.set_user_role(name, role, actor).await {
            Err(err) => assert!(err.to_string().contains(want), "{name}/{role}: {err}"),
            Ok(u) => panic!("{name}/{role}/{actor:?} accepted: {u:?}"),
        }
    }
    assert_eq!(store.user("bob").await.expect("user"), Some(promoted));
    assert!(
        store
            .session("hash-of-cookie-5")
            .await
            .expect("lookup")
            .is_some()
    );
    let back = store
        .set_user_role("bob", "l1", "carol")
        .await
        .expect("demote");
    assert_eq!(back.role, "l1");

    // API tokens.
    let token = store
        .create_api_token(
            "hash-of-token",
            "carol",
            "monitoring",
            Some(chrono::Utc::now() + chrono::Duration::days(90)),
            "carol",
        )
        .await
        .expect("token");
    assert_eq!(
        store.api_token("hash-of-token").await.expect("lookup"),
        Some(token)
    );
    assert_eq!(store.api_token("nope").await.expect("lookup"), None);
    store
        .delete_api_token("hash-of-token")
        .await
        .expect("revoke");
    assert_eq!(
        store.api_token("hash-of-token").await.expect("lookup"),
        None
    );

    // User administration is audited, without hashes.
    let audit = store.audit_users().await.expect("audit");
    let lines: Vec<(String, String)> = audit
        .iter()
        .map(|a| {
            (
                a.action.clone(),
                a.detail["username"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    let expected = [
        ("user.create", "carol"),
        ("user.create", "bob"),
        ("user.disable", "bob"),
        ("user.enable", "bob"),
        ("user.password", "carol"),
        ("user.role", "bob"),
        ("user.role", "bob"),
        ("token.create", "carol"),
    ];
    assert_eq!(
        lines,
        expected.map(|(a, u)| (a.to_owned(), u.to_owned())).to_vec()
    );
    let roles: Vec<(String, String)> = audit
        .iter()
        .filter(|a| a.action == "user.role")
        .map(|a| {
            (
                a.detail["from"].as_str().unwrap_or("").to_owned(),
                a.detail["to"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        roles,
        [("l1", "l2"), ("l2", "l1")].map(|(f, t)| (f.to_owned(), t.to_owned()))
    );
    assert!(
        audit
            .iter()
            .all(|a| a.actor == "system" || a.actor == "carol")
    );
    assert!(
        audit
            .iter()
            .all(|a| !a.detail.to_string().contains("argon2"))
    );
}

async fn tokens_expire_and_are_revoked_with_audit(store: &Store, _url: &str) {
    store
        .create_user_by("dana", HASH, "l1", "admin-ann")
        .await
        .expect("dana");
    let soon = Utc::now() + Duration::days(90);
    let past = Utc::now() - Duration::seconds(1);
    store
        .create_api_token("h-live", "dana", "ci", Some(soon), "admin-ann")
        .await
        .expect("live");
    store
        .create_api_token("h-old", "dana", "ci", Some(past), "admin-ann")
        .await
        .expect("expired");
    store
        .create_api_token("h-other", "dana", "monitoring", Some(soon), "dana")
        .await
        .expect("other");
    assert!(store.api_token("h-live").await.expect("lookup").is_some());
    assert!(
        store.api_token("h-old").await.expect("lookup").is_none(),
        "an expired token still works"
    );
    let n = store
        .revoke_api_tokens("dana", Some("ci"), "admin-ann")
        .await
        .expect("revoke");
    assert_eq!(n, 2);
    assert!(store.api_token("h-live").await.expect("lookup").is_none());
    assert!(store.api_token("h-other").await.expect("lookup").is_some());
    assert!(
        store
            .revoke_api_token("h-other", "dana")
            .await
            .expect("own")
    );
    assert!(store.api_token("h-other").await.expect("lookup").is_none());
    let tokens = store.api_tokens("dana").await.expect("list");
    assert_eq!(tokens.len(), 3);
    assert!(tokens.iter().all(|t| t.revoked_at.is_some()));
    let audit: Vec<(String, String)> = store
        .audit_users()
        .await
        .expect("audit")
        .into_iter()
        .map(|a| (a.action, a.actor))
        .collect();
    let want = [
        ("user.create", "admin-ann"),
        ("token.create", "admin-ann"),
        ("token.create", "admin-ann"),
        ("token.create", "dana"),
        ("token.revoke", "admin-ann"),
        ("token.revoke", "dana"),
    ];
    assert_eq!(
        audit,
        want.map(|(a, b)| (a.to_owned(), b.to_owned())).to_vec()
    );
}
