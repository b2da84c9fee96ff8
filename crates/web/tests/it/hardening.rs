//! Hardening: the unauthenticated routes stay bounded (metrics, login), uploads cannot forge
//! automated evidence, tokens expire and are revoked, and every response carries the security
//! headers.

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use tower::ServiceExt;

use crate::support::*;

async fn raw(app: &axum::Router, method: &str, path: &str) -> StatusCode {
    let req = Request::builder()
        .method(Method::from_bytes(method.as_bytes()).expect("method"))
        .uri(path)
        .body(Body::empty())
        .expect("request");
    app.clone().oneshot(req).await.expect("router").status()
}

#[tokio::test]
async fn metrics_stay_bounded_whatever_methods_and_paths_are_invented() {
    let app = sqlite_app().await;
    let r = app.router();
    // Every route class once, so the baseline holds the labels a normal day has.
    for (m, p) in [("GET", "/healthz"), ("GET", "/login"), ("GET", "/nope")] {
        raw(&r, m, p).await;
    }
    let before = send(&r, Method::GET, "/metrics", None, false, Payload::Empty).await;
    assert_eq!(before.status, StatusCode::OK);
    for i in 0..100 {
        let method = format!("X{}{}", "M".repeat(2000), i);
        let path = format!("/invented/{i}/{}", "p".repeat(1000));
        raw(&r, &method, &path).await;
        raw(&r, "GET", &format!("/incidents/{i}")).await;
    }
    let after = send(&r, Method::GET, "/metrics", None, false, Payload::Empty).await;
    assert_eq!(after.status, StatusCode::OK);
    assert!(
        !after.body.contains("MMMM") && !after.body.contains("/invented/"),
        "an invented method or path became a label"
    );
    assert!(after.body.contains("method=\"other\""), "{}", after.body);
    assert!(after.body.contains("route=\"/incidents/{id}\""));
    eprintln!(
        "/metrics: {} bytes before, {} after 200 invented requests",
        before.body.len(),
        after.body.len()
    );
    // Two new label sets at most (method other; the page route), each one histogram.
    let growth = after.body.len().saturating_sub(before.body.len());
    assert!(
        growth < 8 * 1024,
        "/metrics grew by {growth} bytes (from {} to {})",
        before.body.len(),
        after.body.len()
    );
}

/// A login form's cookie and CSRF value, reusable for many posts (as a script would).
async fn login_form(app: &axum::Router) -> (String, String) {
    let page = send(app, Method::GET, "/login", None, false, Payload::Empty).await;
    (
        set_cookie(&page, "dialtone_login").expect("login cookie"),
        scrape_csrf(&page.body).expect("login csrf"),
    )
}

async fn post_login(app: &axum::Router, form: &(String, String), user: &str, pw: &str) -> Reply {
    let req = Request::builder()
        .method(Method::POST)
        .uri("/login")
        .header(header::COOKIE, format!("dialtone_login={}", form.0))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(urlencode(&[
            ("username".into(), user.into()),
            ("password".into(), pw.into()),
            ("csrf".into(), form.1.clone()),
        ])))
        .expect("request");
    let res = app.clone().oneshot(req).await.expect("router");
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
        .await
        .expect("body");
    Reply {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

#[tokio::test]
async fn forty_wrong_passwords_lock_the_account_and_the_right_one_is_then_refused() {
    let app = sqlite_app().await;
    app.user("carol", "l1").await;
    let r = app.router();
    let form = login_form(&r).await;
    let mut throttled = 0;
    for i in 0..40 {
        let reply = post_login(&r, &form, "carol", &format!("wrong-{i}")).await;
        assert!(
            [StatusCode::UNAUTHORIZED, StatusCode::TOO_MANY_REQUESTS].contains(&reply.status),
            "{}",
            reply.status
        );
        if reply.status == StatusCode::TOO_MANY_REQUESTS {
            throttled += 1;
            let wait: u64 = reply.headers[header::RETRY_AFTER]
                .to_str()
                .expect("ascii")
                .parse()
                .expect("seconds");
            assert!(wait >= 1);
        }
    }
    assert!(throttled >= 30, "only {throttled} of 40 throttled");
    let right = post_login(&r, &form, "carol", PASSWORD).await;
    assert_eq!(right.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(right.headers.get(header::RETRY_AFTER).is_some());
    assert!(set_cookie(&right, "dialtone_session").is_none());
    // Another account is not locked by carol's failures.
    app.user("dave", "l1").await;
    let other = post_login(&r, &form, "dave", PASSWORD).await;
    assert_eq!(other.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn an_unknown_user_takes_as_long_as_a_known_one() {
    let app = sqlite_app().await;
    // Real costs, as `dialtone user add` makes them.
    let hash = web::hash_password(PASSWORD).expect("hash");
    app.store()
        .create_user("erin", &hash, "l1")
        .await
        .expect("user");
    let r = app.router();
    let form = login_form(&r).await;
    // Warm up: the dummy hash (computed once) and every verification thread's Argon2 memory
    // (allocated on a thread's first verification), so both kinds meet warm threads.
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    // (Unknown names only: erin's failures count towards her lockout.)
    for i in 0..2 * threads {
        post_login(&r, &form, &format!("warmup-nobody{i}"), "x").await;
    }
    let median = |mut v: Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let (mut known, mut unknown) = (Vec::new(), Vec::new());
    for i in 0..4 {
        let t = Instant::now();
        let a = post_login(&r, &form, "erin", &format!("wrong{i}")).await;
        known.push(t.elapsed());
        let t = Instant::now();
        let b = post_login(&r, &form, &format!("nobody{i}"), "wrong").await;
        unknown.push(t.elapsed());
        assert_eq!(a.status, StatusCode::UNAUTHORIZED);
        assert_eq!(b.status, StatusCode::UNAUTHORIZED);
        // Same page for both (each keeps the name typed): nothing tells them apart.
        assert_eq!(
            a.body.replace("value=\"erin\"", "").len(),
            b.body.replace(&format!("value=\"nobody{i}\""), "").len()
        );
    }
    let (k, u) = (median(known), median(unknown));
    eprintln!("login medians: known user {k:?}, unknown user {u:?}");
    assert!(
        u.as_secs_f64() >= 0.5 * k.as_secs_f64(),
        "unknown {u:?} vs known {k:?}"
    );
}

#[tokio::test]
async fn password_verifications_are_bounded_and_the_excess_gets_503() {
    let dir = tempfile::tempdir().expect("dir");
    let store = incidents::Store::open_data_dir(dir.path())
        .await
        .expect("store");
    let cfg = web::WebConfig {
        login_slots: 1,
        login_wait: Duration::from_millis(1),
        ..config()
    };
    let state = web::AppState::new(cfg, store, runbook::RunbookSet::builtin(), None);
    let r = web::router(state);
    let form = login_form(&r).await;
    post_login(&r, &form, "warmup", "x").await;
    let mut tasks = Vec::new();
    for i in 0..8 {
        let (r, form) = (r.clone(), form.clone());
        tasks.push(tokio::spawn(async move {
            post_login(&r, &form, &format!("ghost{i}"), "wrong").await
        }));
    }
    let mut busy = 0;
    for t in tasks {
        let reply = t.await.expect("task");
        match reply.status {
            StatusCode::UNAUTHORIZED => {}
            StatusCode::SERVICE_UNAVAILABLE => {
                busy += 1;
                assert!(reply.headers.get(header::RETRY_AFTER).is_some());
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert!(busy >= 1, "8 logins at once on 1 slot, none waited out");
}

#[tokio::test]
async fn an_upload_named_like_a_check_result_is_not_automated_evidence() {
    let app = sqlite_app().await;
    let r = app.router();
    let lena = agent(&app, "lena", "l1").await;
    let id = open_incident(&r, &lena, "1001").await;
    let forged = serde_json::json!({
        "check": "l1.connection_status",
        "summary": "FORGED: echo call OK",
        "evidence": { "forged": true },
    });
    for step in ["gate.operational_requirements", "l1.connection_status"] {
        let up = send(
            &r,
            Method::POST,
            &format!("/incidents/{id}/attachments"),
            Some(&lena),
            false,
            Payload::File {
                csrf: Some(lena.csrf.clone()),
                name: format!("check-{step}-1.json"),
                bytes: forged.to_string().into_bytes(),
            },
        )
        .await;
        assert!(
            up.status.is_redirection() || up.status.is_success(),
            "{}",
            up.status
        );
    }
    let page = send(
        &r,
        Method::GET,
        &format!("/incidents/{id}"),
        Some(&lena),
        false,
        Payload::Empty,
    )
    .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains("check-l1.connection_status-1.json"),
        "the upload is listed"
    );
    assert!(
        !page.body.contains("FORGED: echo call OK"),
        "an upload shows as automated evidence"
    );
    assert!(!page.body.contains("Evidence from the automated check"));
    // A real check run still shows.
    let v = version(&r, &lena, id).await;
    walk(&r, &lena, id, &[]).await;
    let res = api(
        &r,
        Method::POST,
        &format!("/api/incidents/{id}/check"),
        &lena,
        Some(serde_json::json!({ "version": v })),
    )
    .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
}

#[tokio::test]
async fn tokens_are_revoked_on_the_admin_page_and_by_themselves_and_audited() {
    let app = sqlite_app().await;
    let r = app.router();
    let ann = agent(&app, "ann", "admin").await;
    // A user created on the admin page is audited with the admin as actor.
    let made = send(
        &r,
        Method::POST,
        "/admin/users",
        Some(&ann),
        false,
        form(&[
            ("csrf", &ann.csrf),
            ("username", "lena"),
            ("password", "a long password"),
            ("role", "l1"),
        ]),
    )
    .await;
    assert_eq!(made.status, StatusCode::OK, "{}", made.body);
    // A token made on the admin page: not cached, expires, audited with ann.
    let page = send(
        &r,
        Method::POST,
        "/admin/tokens",
        Some(&ann),
        false,
        form(&[("csrf", &ann.csrf), ("username", "lena"), ("label", "ci")]),
    )
    .await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.headers[header::CACHE_CONTROL], "no-store");
    let token = page
        .body
        .split("<code class=\"token\">")
        .nth(1)
        .and_then(|s| s.split('<').next())
        .expect("token shown")
        .to_owned();
    let lena = Agent {
        name: "lena".into(),
        token: Some(token),
        ..Agent::default()
    };
    assert_eq!(
        api(&r, Method::GET, "/api/me", &lena, None).await.status,
        StatusCode::OK
    );
    let tokens = app.store().api_tokens("lena").await.expect("tokens");
    let expires = tokens[0].expires_at.expect("an expiry");
    let days = (expires - chrono::Utc::now()).num_days();
    assert!((89..=90).contains(&days), "{days}");
    // Revoked on the admin page: the token stops working at once.
    let rev = send(
        &r,
        Method::POST,
        "/admin/tokens/revoke",
        Some(&ann),
        false,
        form(&[("csrf", &ann.csrf), ("username", "lena"), ("label", "")]),
    )
    .await;
    assert_eq!(rev.status, StatusCode::OK);
    assert!(
        rev.body.contains("1 API token(s) of lena revoked"),
        "{}",
        rev.body
    );
    assert_eq!(
        api(&r, Method::GET, "/api/me", &lena, None).await.status,
        StatusCode::UNAUTHORIZED
    );
    // A script revokes its own token through the API.
    let own = web::create_api_token(app.store(), "lena", "script")
        .await
        .expect("token");
    let lena = Agent {
        token: Some(own),
        ..lena
    };
    let res = api(&r, Method::POST, "/api/tokens/revoke", &lena, None).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    assert_eq!(res.json()["revoked"], true);
    assert_eq!(
        api(&r, Method::GET, "/api/me", &lena, None).await.status,
        StatusCode::UNAUTHORIZED
    );
    let audit: Vec<(String, String)> = app
        .store()
        .audit_users()
        .await
        .expect("audit")
        .into_iter()
        .filter(|a| a.detail["username"] == "lena")
        .map(|a| (a.action, a.actor))
        .collect();
    let want = [
        ("user.create", "ann"),
        ("token.create", "ann"),
        ("token.revoke", "ann"),
        ("token.create", "system"),
        ("token.revoke", "lena"),
    ];
    assert_eq!(
        audit,
        want.map(|(a, b)| (a.to_owned(), b.to_owned())).to_vec()
    );
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let app = sqlite_app().await;
    let r = app.router();
    let lena = agent(&app, "lena", "l1").await;
    let id = open_incident(&r, &lena, "1001").await;
    for (who, path) in [
        (None, "/login".to_owned()),
        (None, "/healthz".to_owned()),
        (None, "/metrics".to_owned()),
        (None, "/static/style.css".to_owned()),
        (None, "/no/such/page".to_owned()),
        (None, "/queue/L1".to_owned()),
        (Some(&lena), format!("/incidents/{id}")),
        (Some(&lena), "/api/incidents".to_owned()),
        (Some(&lena), "/api/incidents/999999".to_owned()),
    ] {
        let res = send(
            &r,
            Method::GET,
            &path,
            who,
            path.starts_with("/api"),
            Payload::Empty,
        )
        .await;
        let h = |n: &str| {
            res.headers
                .get(n)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned()
        };
        assert!(
            h("content-security-policy").contains("frame-ancestors 'none'"),
            "{path}"
        );
        assert_eq!(h("x-content-type-options"), "nosniff", "{path}");
        assert!(!h("referrer-policy").is_empty(), "{path}");
    }
}

#[tokio::test]
async fn cookies_are_secure_on_a_non_loopback_address() {
    let dir = tempfile::tempdir().expect("dir");
    let store = incidents::Store::open_data_dir(dir.path())
        .await
        .expect("store");
    let cfg = web::WebConfig {
        listen: "0.0.0.0:8080".parse().expect("addr"),
        ..config()
    };
    let r = web::router(web::AppState::new(
        cfg,
        store,
        runbook::RunbookSet::builtin(),
        None,
    ));
    let page = send(&r, Method::GET, "/login", None, false, Payload::Empty).await;
    let cookie = page.headers[header::SET_COOKIE].to_str().expect("ascii");
    assert!(cookie.contains("; Secure"), "{cookie}");
    // Loopback keeps plain cookies (tests, a laptop).
    let app = sqlite_app().await;
    let page = send(
        &app.router(),
        Method::GET,
        "/login",
        None,
        false,
        Payload::Empty,
    )
    .await;
    let cookie = page.headers[header::SET_COOKIE].to_str().expect("ascii");
    assert!(!cookie.contains("Secure"), "{cookie}");
}

#[tokio::test]
async fn the_notice_shows_only_fixed_texts() {
    let app = sqlite_app().await;
    let r = app.router();
    let lena = agent(&app, "lena", "l1").await;
    let id = open_incident(&r, &lena, "1001").await;
    let forged = send(
        &r,
        Method::GET,
        &format!("/incidents/{id}?msg=Your%20password%20expired%2C%20call%200800"),
        Some(&lena),
        false,
        Payload::Empty,
    )
    .await;
    assert_eq!(forged.status, StatusCode::OK);
    assert!(!forged.body.contains("call 0800"));
    assert!(!forged.body.contains("flash ok"));
    let real = send(
        &r,
        Method::GET,
        &format!("/incidents/{id}?msg=Taken"),
        Some(&lena),
        false,
        Payload::Empty,
    )
    .await;
    assert!(real.body.contains("You have it now."));
}

#[tokio::test]
async fn a_forged_upload_is_refused_before_its_body_is_read() {
    let app = sqlite_app().await;
    let r = app.router();
    let lena = agent(&app, "lena", "l1").await;
    let id = open_incident(&r, &lena, "1001").await;
    // Over the limit and without a CSRF token: refused as forged (403), not as too large (413),
    // because the file is never read.
    let res = send(
        &r,
        Method::POST,
        &format!("/incidents/{id}/attachments"),
        Some(&lena),
        false,
        Payload::File {
            csrf: None,
            name: "big.log".into(),
            bytes: vec![b'x'; UPLOAD_LIMIT + 1000],
        },
    )
    .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    // An L1 agent may add files to an L2 incident they follow, but the size limit is still
    // enforced before the body is read.
    let ann = agent(&app, "ann", "admin").await;
    let l2 = l2_incident(&r, &ann, "2002").await;
    let res = send(
        &r,
        Method::POST,
        &format!("/incidents/{l2}/attachments"),
        Some(&lena),
        false,
        Payload::File {
            csrf: Some(lena.csrf.clone()),
            name: "big.log".into(),
            bytes: vec![b'x'; UPLOAD_LIMIT + 1000],
        },
    )
    .await;
    assert_eq!(res.status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn l1_cannot_list_l2_by_the_api_either() {
    let app = sqlite_app().await;
    let r = app.router();
    let ann = agent(&app, "ann", "admin").await;
    let lena = agent(&app, "lena", "l1").await;
    l2_incident(&r, &ann, "2002").await;
    open_incident(&r, &ann, "1001").await;
    let page = send(
        &r,
        Method::GET,
        "/queue/L2",
        Some(&lena),
        false,
        Payload::Empty,
    )
    .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    let api_l2 = api(&r, Method::GET, "/api/incidents?level=L2", &lena, None).await;
    assert_eq!(api_l2.status, StatusCode::FORBIDDEN);
    let all = api(&r, Method::GET, "/api/incidents", &lena, None).await;
    let levels: Vec<String> = all
        .json()
        .as_array()
        .expect("list")
        .iter()
        .map(|i| i["level"].as_str().unwrap_or("").to_owned())
        .collect();
    assert_eq!(levels, ["L1"]);
}

#[tokio::test]
async fn expired_sessions_are_purged_periodically() {
    let app = sqlite_app().await;
    app.user("lena", "l1").await;
    let past = chrono::Utc::now() - chrono::Duration::seconds(5);
    app.store()
        .create_session("expired-hash", "lena", past)
        .await
        .expect("session");
    let purger = web::spawn_session_purger(app.store().clone(), Duration::from_millis(50));
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut gone = false;
    while Instant::now() < deadline {
        // A second expired insert under the same hash succeeds only once the first is gone.
        if app
            .store()
            .create_session("expired-hash", "lena", past)
            .await
            .is_ok()
        {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    purger.abort();
    assert!(gone, "the expired session was never purged");
}

/// A tmpfs of `size` mounted on a fresh directory, unmounted on drop (needs root).
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(size: &str) -> Option<SmallDisk> {
        let dir = tempfile::tempdir().expect("dir");
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(SmallDisk { dir })
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg(self.dir.path())
            .status();
    }
}

#[tokio::test]
async fn sqlite_writes_again_after_the_disk_was_full_and_health_says_so() {
    let Some(disk) = SmallDisk::mount("3m") else {
        // Mounting needs root; CI runs as root, where this test runs for real.
        eprintln!("skipped: cannot mount a tmpfs (not root)");
        assert_ne!(
            std::process::Command::new("id")
                .arg("-u")
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
                .unwrap_or_default(),
            "0",
            "root but the tmpfs did not mount"
        );
        return;
    };
    let store = incidents::Store::open_data_dir(disk.dir.path())
        .await
        .expect("store");
    let state = web::AppState::new(
        config(),
        store.clone(),
        runbook::RunbookSet::builtin(),
        None,
    );
    let r = web::router(state);
    let inc = store
        .open_incident(
            incidents::NewIncident {
                account: "1001".into(),
                reporter: "r".into(),
                description: String::new(),
                runbook: "user-cant-call".into(),
                level: "L1".into(),
                current_step: None,
            },
            "ann",
        )
        .await
        .expect("open");
    // Fill the disk: a filler file takes everything left.
    let filler = disk.dir.path().join("filler");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&filler).expect("filler");
        let chunk = vec![0u8; 64 * 1024];
        while f.write_all(&chunk).is_ok() {}
        let _ = f.sync_all();
    }
    let blob = vec![7u8; 48 * 1024];
    let mut failures = 0;
    for i in 0..20 {
        match store
            .add_attachment(
                inc.id,
                &format!("f{i}.bin"),
                "application/octet-stream",
                &blob,
                "ann",
            )
            .await
        {
            Ok(_) => {}
            Err(e) => {
                failures += 1;
                let text = e.to_string();
                assert!(text.contains("full") || text.contains("disk"), "{text}");
            }
        }
    }
    assert!(failures > 0, "the disk never filled");
    let health = send(&r, Method::GET, "/healthz", None, false, Payload::Empty).await;
    assert_eq!(
        health.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        health.body
    );
    assert!(health.body.contains("cannot write"), "{}", health.body);
    // Free the space: the very next write works, without a restart.
    std::fs::remove_file(&filler).expect("free");
    let t = Instant::now();
    for i in 0..10 {
        store
            .add_attachment(
                inc.id,
                &format!("after{i}.bin"),
                "application/octet-stream",
                &blob,
                "ann",
            )
            .await
            .unwrap_or_else(|e| panic!("write {i} after freeing space: {e}"));
    }
    assert!(t.elapsed() < Duration::from_secs(10));
    let health = send(&r, Method::GET, "/healthz", None, false, Payload::Empty).await;
    assert_eq!(health.status, StatusCode::OK, "{}", health.body);
    store.shutdown().await;
}

/// A TCP relay to PostgreSQL that the test can cut, as a database going down looks to the app.
struct Relay {
    addr: std::net::SocketAddr,
    tasks: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
    accept: tokio::task::JoinHandle<()>,
}

impl Relay {
    async fn start(target: String) -> Relay {
        Relay::start_on("127.0.0.1:0".parse().expect("addr"), target).await
    }

    /// A relay on `addr` (retrying while the port is released after a cut).
    async fn start_on(addr: std::net::SocketAddr, target: String) -> Relay {
        let mut tries = 0;
        let listener = loop {
            match tokio::net::TcpListener::bind(addr).await {
                Ok(l) => break l,
                Err(e) if tries < 40 => {
                    tries += 1;
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("cannot bind {addr} again: {e}"),
            }
        };
        let addr = listener.local_addr().expect("addr");
        let tasks = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let conns = tasks.clone();
        let accept = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let target = target.clone();
                let t = tokio::spawn(async move {
                    if let Ok(mut server) = tokio::net::TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                conns.lock().expect("lock").push(t);
            }
        });
        Relay {
            addr,
            tasks,
            accept,
        }
    }

    /// Closes the port and every relayed connection.
    fn cut(&self) {
        self.accept.abort();
        for t in self.tasks.lock().expect("lock").drain(..) {
            t.abort();
        }
    }
}

#[tokio::test]
async fn postgres_down_is_a_fast_503_with_the_reason_and_pages_keep_the_layout() {
    let direct = pg_app().await;
    // host:port of the test database, and its URL through the relay.
    let rest = direct.url.split("://").nth(1).expect("url");
    let (userinfo, hostpath) = rest.rsplit_once('@').expect("user@host");
    let (hostport, db) = hostpath.split_once('/').expect("host/db");
    let relay = Relay::start(hostport.to_owned()).await;
    let url = format!("postgres://{userinfo}@{}/{db}", relay.addr);
    let store = incidents::Store::connect(&url).await.expect("via relay");
    let app = TestApp::from_state(web::AppState::new(
        config(),
        store,
        runbook::RunbookSet::builtin(),
        None,
    ));
    let r = app.router();
    let lena = agent(&app, "lena", "l1").await;
    let ok = send(&r, Method::GET, "/healthz", None, false, Payload::Empty).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);

    relay.cut();
    let t = Instant::now();
    let h = send(&r, Method::GET, "/healthz", None, false, Payload::Empty).await;
    let took = t.elapsed();
    assert_eq!(h.status, StatusCode::SERVICE_UNAVAILABLE, "{}", h.body);
    assert!(took < Duration::from_millis(1100), "/healthz took {took:?}");
    assert!(h.body.to_lowercase().contains("refused"), "{}", h.body);
    assert!(h.body.contains("postgres"), "{}", h.body);

    let w = api(
        &r,
        Method::POST,
        "/api/incidents",
        &lena,
        Some(serde_json::json!({ "account": "1001", "reporter": "r" })),
    )
    .await;
    assert_eq!(w.status, StatusCode::SERVICE_UNAVAILABLE, "{}", w.body);
    assert!(w.headers.get(header::RETRY_AFTER).is_some());
    assert!(
        w.json()["error"].as_str().unwrap_or("").contains("store"),
        "{}",
        w.body
    );

    let page = send(
        &r,
        Method::GET,
        "/queue/L1",
        Some(&lena),
        false,
        Payload::Empty,
    )
    .await;
    assert_eq!(page.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        page.body.contains("/static/style.css"),
        "not in the layout: {}",
        page.body
    );
    assert!(page.body.contains("store"), "{}", page.body);
}

#[tokio::test]
async fn an_oversized_api_upload_gets_the_documented_json_error() {
    let app = sqlite_app().await;
    let r = app.router();
    let lena = agent(&app, "lena", "l1").await;
    let id = open_incident(&r, &lena, "1001").await;
    for size in [UPLOAD_LIMIT + 10, UPLOAD_LIMIT * 4] {
        let res = send(
            &r,
            Method::POST,
            &format!("/api/incidents/{id}/attachments"),
            Some(&lena),
            true,
            Payload::File {
                csrf: None,
                name: "big.log".into(),
                bytes: vec![b'x'; size],
            },
        )
        .await;
        assert_eq!(res.status, StatusCode::PAYLOAD_TOO_LARGE, "{size}");
        let err = res.json()["error"].as_str().unwrap_or("").to_owned();
        assert!(err.contains("limit"), "{size}: {}", res.body);
    }
    // As a real client sends it: with a Content-Length over the transport limit.
    let body = vec![b'x'; UPLOAD_LIMIT * 4];
    let req = Request::builder()
        .method(Method::POST)
        .uri(format!("/api/incidents/{id}/attachments"))
        .header(
            header::AUTHORIZATION,
            format!("Bearer {}", lena.token.clone().unwrap_or_default()),
        )
        .header(header::CONTENT_TYPE, "multipart/form-data; boundary=xyz")
        .header(header::CONTENT_LENGTH, body.len())
        .body(Body::from(body))
        .expect("request");
    let res = r.clone().oneshot(req).await.expect("router");
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
        .await
        .expect("body");
    let v: serde_json::Value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&bytes)));
    assert!(v["error"].as_str().unwrap_or("").contains("limit"), "{v}");
}

#[tokio::test]
async fn an_oversized_json_body_gets_the_documented_json_error() {
    let app = sqlite_app().await;
    let r = app.router();
    let lena = agent(&app, "lena", "l1").await;
    let huge = "x".repeat(3 * 1024 * 1024);
    let res = api(
        &r,
        Method::POST,
        "/api/incidents",
        &lena,
        Some(serde_json::json!({ "account": huge, "reporter": "r" })),
    )
    .await;
    assert_eq!(res.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        res.json()["error"].as_str().unwrap_or("").contains("limit"),
        "{}",
        res.body
    );
    let bad = send(
        &r,
        Method::POST,
        "/api/incidents",
        Some(&lena),
        true,
        Payload::Form(vec![]),
    )
    .await;
    assert!(bad.status.is_client_error());
    assert!(bad.json()["error"].is_string(), "{}", bad.body);
}

async fn post_with_key(
    r: &axum::Router,
    who: &Agent,
    path: &str,
    key: &str,
    body: serde_json::Value,
) -> Reply {
    let req = Request::builder()
        .method(Method::POST)
        .uri(path)
        .header(
            header::AUTHORIZATION,
            format!("Bearer {}", who.token.clone().unwrap_or_default()),
        )
        .header(header::CONTENT_TYPE, "application/json")
        .header("idempotency-key", key)
        .body(Body::from(body.to_string()))
        .expect("request");
    let res = r.clone().oneshot(req).await.expect("router");
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
        .await
        .expect("body");
    Reply {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

#[tokio::test]
async fn a_repeated_write_with_an_idempotency_key_is_done_once() {
    let app = sqlite_app().await;
    let r = app.router();
    let lena = agent(&app, "lena", "l1").await;
    let luca = agent(&app, "luca", "l1").await;
    let open = serde_json::json!({
        "account": "1001", "reporter": "r",
        "gate": { "gate.operational_requirements": "no", "gate.client_error": "none" }
    });
    let first = post_with_key(&r, &lena, "/api/incidents", "open-1001-a", open.clone()).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    for _ in 0..3 {
        let again = post_with_key(&r, &lena, "/api/incidents", "open-1001-a", open.clone()).await;
        assert_eq!(again.status, StatusCode::CREATED);
        assert_eq!(again.body, first.body);
        assert_eq!(again.headers["idempotency-replayed"], "true");
    }
    let all = api(&r, Method::GET, "/api/incidents", &lena, None).await;
    assert_eq!(
        all.json().as_array().map(Vec::len),
        Some(1),
        "a retry opened a duplicate"
    );
    // The same key from another credential is another key.
    let other = post_with_key(&r, &luca, "/api/incidents", "open-1001-a", open.clone()).await;
    assert_eq!(other.status, StatusCode::CREATED);
    assert!(other.headers.get("idempotency-replayed").is_none());
    // Reused for another request: refused.
    let id = first.json()["incident"]["id"].as_i64().expect("id");
    let wrong = post_with_key(
        &r,
        &lena,
        &format!("/api/incidents/{id}/assign"),
        "open-1001-a",
        serde_json::json!({ "version": 3, "assignee": "lena" }),
    )
    .await;
    assert_eq!(
        wrong.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        wrong.body
    );
    // A refused write (stale version) is answered the same on a retry, and changes nothing.
    let stale = serde_json::json!({ "version": 1, "assignee": "lena" });
    let a = post_with_key(
        &r,
        &lena,
        &format!("/api/incidents/{id}/assign"),
        "assign-1",
        stale.clone(),
    )
    .await;
    let b = post_with_key(
        &r,
        &lena,
        &format!("/api/incidents/{id}/assign"),
        "assign-1",
        stale,
    )
    .await;
    assert_eq!((a.status, &a.body), (b.status, &b.body));
    let bad = post_with_key(&r, &lena, "/api/incidents", "", open).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn an_api_open_with_gate_answers_is_all_or_nothing() {
    use sqlx::Connection;
    let app = sqlite_app().await;
    let r = app.router();
    let lena = agent(&app, "lena", "l1").await;
    let mut c = sqlx::SqliteConnection::connect(&app.url)
        .await
        .expect("raw");
    sqlx::raw_sql(
        "CREATE TRIGGER fail_second_step BEFORE INSERT ON step_records \
         WHEN NEW.step = 'gate.client_error' BEGIN SELECT RAISE(ABORT, 'injected'); END;",
    )
    .execute(&mut c)
    .await
    .expect("trigger");
    let res = api(
        &r,
        Method::POST,
        "/api/incidents",
        &lena,
        Some(serde_json::json!({
            "account": "1001", "reporter": "r",
            "gate": { "gate.operational_requirements": "no", "gate.client_error": "none" }
        })),
    )
    .await;
    assert!(res.status.is_server_error(), "{}", res.status);
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM incidents")
        .fetch_one(&mut c)
        .await
        .expect("count");
    assert_eq!(n, 0, "an incident was left without its gate answers");
}

#[tokio::test]
async fn retries_with_an_idempotency_key_across_a_postgres_outage_open_one_incident() {
    let direct = pg_app().await;
    let rest = direct.url.split("://").nth(1).expect("url");
    let (userinfo, hostpath) = rest.rsplit_once('@').expect("user@host");
    let (hostport, db) = hostpath.split_once('/').expect("host/db");
    let relay = Relay::start(hostport.to_owned()).await;
    let addr = relay.addr;
    let url = format!("postgres://{userinfo}@{addr}/{db}");
    let store = incidents::Store::connect(&url).await.expect("via relay");
    let app = TestApp::from_state(web::AppState::new(
        config(),
        store,
        runbook::RunbookSet::builtin(),
        None,
    ));
    let r = app.router();
    let lena = agent(&app, "lena", "l1").await;
    let open = serde_json::json!({
        "account": "1001", "reporter": "r",
        "gate": { "gate.operational_requirements": "no", "gate.client_error": "none" }
    });
    relay.cut();
    let down = post_with_key(&r, &lena, "/api/incidents", "retry-me", open.clone()).await;
    assert_eq!(
        down.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        down.body
    );
    assert!(down.headers.get(header::RETRY_AFTER).is_some());
    // The database is back: the client retries with the same key, twice.
    let _relay = Relay::start_on(addr, hostport.to_owned()).await;
    let mut answers = Vec::new();
    for _ in 0..3 {
        let deadline = Instant::now() + Duration::from_secs(10);
        let reply = loop {
            let reply = post_with_key(&r, &lena, "/api/incidents", "retry-me", open.clone()).await;
            if reply.status != StatusCode::SERVICE_UNAVAILABLE || Instant::now() > deadline {
                break reply;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        answers.push(reply.body);
    }
    assert!(
        answers.iter().all(|a| *a == answers[0]),
        "the retries got different answers"
    );
    let n = app
        .store()
        .list(&incidents::ListFilter::default())
        .await
        .expect("list")
        .len();
    assert_eq!(n, 1, "retries opened {n} incidents");
}

/// A viewer that works until it is cancelled on files named `spin*` (a capture too big for the
/// time bound) and answers at once otherwise; it counts the analyses still running.
struct SpinViewer {
    running: Arc<std::sync::atomic::AtomicUsize>,
}

impl web::AttachmentViewer for SpinViewer {
    fn view(&self, name: &str, ct: &str, bytes: &[u8]) -> Result<web::AttachmentView, String> {
        self.view_cancellable(name, ct, bytes, &web::Cancel::default())
    }

    fn view_cancellable(
        &self,
        name: &str,
        _ct: &str,
        _bytes: &[u8],
        cancel: &web::Cancel,
    ) -> Result<web::AttachmentView, String> {
        use std::sync::atomic::Ordering;
        if !name.starts_with("spin") {
            return Ok(web::AttachmentView {
                kind: "quick".into(),
                summary: "quick analysis done".into(),
                ..Default::default()
            });
        }
        self.running.fetch_add(1, Ordering::SeqCst);
        // At most 30 s, so a broken cancellation fails the test instead of hanging it.
        let t = Instant::now();
        while !cancel.is_cancelled() && t.elapsed() < Duration::from_secs(30) {
            std::hint::spin_loop();
        }
        self.running.fetch_sub(1, Ordering::SeqCst);
        Err("stopped".into())
    }
}

use std::sync::Arc;

#[tokio::test]
async fn a_timed_out_analysis_stops_and_frees_its_slot() {
    use std::sync::atomic::Ordering;
    let dir = tempfile::tempdir().expect("dir");
    let store = incidents::Store::open_data_dir(dir.path())
        .await
        .expect("store");
    let running = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let cfg = web::WebConfig {
        view_timeout: Duration::from_millis(300),
        ..config()
    };
    let state = web::AppState::new(cfg, store, runbook::RunbookSet::builtin(), None).with_viewer(
        Arc::new(SpinViewer {
            running: running.clone(),
        }),
    );
    let app = TestApp::from_state(state);
    let r = app.router();
    let lena = agent(&app, "lena", "l1").await;
    let id = open_incident(&r, &lena, "1001").await;
    let mut atts = Vec::new();
    for name in ["spin-1.pcap", "spin-2.pcap", "spin-3.pcap", "quick.log"] {
        let a = app
            .store()
            .add_attachment(id, name, "application/octet-stream", b"x", "lena")
            .await
            .expect("attach");
        atts.push(a.id);
    }
    let view = |att: i64| format!("/incidents/{id}/attachments/{att}/view");
    // Three analyses that never finish by themselves, one after the other: each times out, is
    // stopped, and gives its slot back (there are two).
    for att in &atts[..3] {
        let p = send(
            &r,
            Method::GET,
            &view(*att),
            Some(&lena),
            false,
            Payload::Empty,
        )
        .await;
        assert_eq!(p.status, StatusCode::OK);
        assert!(p.body.contains("was stopped"), "{}", p.body);
        let t = Instant::now();
        while running.load(Ordering::SeqCst) > 0 && t.elapsed() < Duration::from_secs(5) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(
            running.load(Ordering::SeqCst),
            0,
            "a timed-out analysis still runs after {:?}",
            t.elapsed()
        );
    }
    // The next analysis gets a slot at once.
    let p = send(
        &r,
        Method::GET,
        &view(atts[3]),
        Some(&lena),
        false,
        Payload::Empty,
    )
    .await;
    assert!(p.body.contains("quick analysis done"), "{}", p.body);
}

/// `web::serve_on` on a real loopback socket with `cfg`; returns the address and a handle that
/// stops it.
async fn serve_real(
    cfg: web::WebConfig,
) -> (
    std::net::SocketAddr,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<web::Result<()>>,
    tempfile::TempDir,
) {
    let dir = tempfile::tempdir().expect("dir");
    let store = incidents::Store::open_data_dir(dir.path())
        .await
        .expect("store");
    let state = web::AppState::new(cfg, store, runbook::RunbookSet::builtin(), None);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(web::serve_on(listener, state, async move {
        let _ = stopped.await;
    }));
    (addr, stop, task, dir)
}

/// Reads until the server closes or answers in full (Connection: close), for at most `bound`;
/// returns the status (0 when it closed without one) and how long it took.
async fn read_answer(s: &mut tokio::net::TcpStream, bound: Duration) -> (u16, Duration) {
    use tokio::io::AsyncReadExt;
    let t = Instant::now();
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(bound.saturating_sub(t.elapsed()), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => raw.extend_from_slice(&buf[..n]),
            Err(_) => panic!("no answer and no close within {bound:?}"),
        }
    }
    let text = String::from_utf8_lossy(&raw);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, t.elapsed())
}

#[tokio::test]
async fn slow_heads_slow_bodies_and_idle_connections_are_cut_off() {
    use tokio::io::AsyncWriteExt;
    let cfg = web::WebConfig {
        header_timeout: Duration::from_secs(1),
        body_idle_timeout: Duration::from_secs(1),
        request_timeout: Duration::from_secs(2),
        ..config()
    };
    let (addr, stop, task, _dir) = serve_real(cfg).await;
    let connect = || tokio::net::TcpStream::connect(addr);
    // A connection that sends nothing, and one that sends half a head: closed after the header
    // timeout.
    let mut idle = connect().await.expect("connect");
    let mut half = connect().await.expect("connect");
    half.write_all(b"GET /login HTTP/1.1\r\nHost: t\r\n")
        .await
        .expect("write");
    for s in [&mut idle, &mut half] {
        let (_, took) = read_answer(s, Duration::from_secs(5)).await;
        assert!(took < Duration::from_secs(3), "closed after {took:?}");
    }
    // A login body trickling a byte every 300 ms: 408 at the request timeout.
    let mut slow = connect().await.expect("connect");
    slow.write_all(
        b"POST /login HTTP/1.1\r\nHost: t\r\nContent-Type: application/x-www-form-urlencoded\r\n\
          Content-Length: 1000\r\nConnection: close\r\n\r\n",
    )
    .await
    .expect("write");
    let trickle = tokio::spawn(async move {
        for _ in 0..20 {
            if slow.write_all(b"a").await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        slow
    });
    let mut slow = trickle.await.expect("trickle");
    let (status, _) = read_answer(&mut slow, Duration::from_secs(5)).await;
    assert_eq!(status, 408);
    // A body that stops: refused after the body idle timeout, well before the request timeout
    // would end it.
    let mut stalled = connect().await.expect("connect");
    stalled
        .write_all(
            b"POST /login HTTP/1.1\r\nHost: t\r\nContent-Type: application/x-www-form-urlencoded\r\n\
              Content-Length: 1000\r\nConnection: close\r\n\r\nusername=a",
        )
        .await
        .expect("write");
    let (status, took) = read_answer(&mut stalled, Duration::from_secs(5)).await;
    assert!((400..500).contains(&status), "{status}");
    assert!(
        took < Duration::from_millis(1900),
        "answered after {took:?}"
    );
    // The server stops in bounded time.
    let _ = stop.send(());
    let served = tokio::time::timeout(Duration::from_secs(12), task)
        .await
        .expect("serve_on returns after shutdown")
        .expect("task");
    assert!(served.is_ok());
}

#[tokio::test]
async fn connections_beyond_the_limit_wait_for_a_free_one() {
    use tokio::io::AsyncWriteExt;
    let cfg = web::WebConfig {
        max_connections: 2,
        ..config()
    };
    let (addr, stop, task, _dir) = serve_real(cfg).await;
    let mut held = Vec::new();
    for _ in 0..2 {
        held.push(tokio::net::TcpStream::connect(addr).await.expect("connect"));
    }
    let mut third = tokio::net::TcpStream::connect(addr).await.expect("connect");
    third
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    let mut buf = [0u8; 64];
    let early = tokio::time::timeout(
        Duration::from_millis(700),
        tokio::io::AsyncReadExt::read(&mut third, &mut buf),
    )
    .await;
    assert!(early.is_err(), "a third connection was served beside two");
    drop(held.pop());
    let (status, _) = read_answer(&mut third, Duration::from_secs(5)).await;
    assert_eq!(status, 200);
    drop(held);
    let _ = stop.send(());
    let _ = tokio::time::timeout(Duration::from_secs(12), task).await;
}
