//! One test against a real listening server: bind 127.0.0.1:0, talk HTTP/1.1 over TCP, shut down.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::*;

async fn http(addr: std::net::SocketAddr, request: String) -> String {
    let io = async {
        let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
        s.write_all(request.as_bytes()).await.expect("write");
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await.expect("read");
        String::from_utf8_lossy(&buf).into_owned()
    };
    tokio::time::timeout(Duration::from_secs(10), io)
        .await
        .expect("answer within 10 s")
}

#[tokio::test]
async fn a_real_listener_serves_health_pages_and_the_api() {
    let app = sqlite_app().await;
    let lena = agent(&app, "lena", "l1").await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(web::serve_on(listener, app.state.clone(), async {
        let _ = stopped.await;
    }));
    let health = http(
        addr,
        "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".into(),
    )
    .await;
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    assert!(health.ends_with("ok\n"));
    let body =
        r#"{"account":"live-1","reporter":"r","gate":{"gate.operational_requirements":"no"}}"#;
    let token = lena.token.clone().unwrap_or_default();
    let created = http(addr, format!(
        "POST /api/incidents HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )).await;
    assert!(created.starts_with("HTTP/1.1 201"), "{created}");
    assert!(
        created.contains("\"step\":\"gate.client_error\""),
        "{created}"
    );
    let session = lena.session.clone().unwrap_or_default();
    let page = http(addr, format!("GET /queue/L1?tab=mine HTTP/1.1\r\nHost: x\r\nCookie: dialtone_session={session}\r\nConnection: close\r\n\r\n")).await;
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(page.contains("live-1"));
    let _ = stop.send(());
    let done = tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("stops");
    assert!(matches!(done, Ok(Ok(()))));
}
