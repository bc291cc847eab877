//! A webhook receiver on loopback for tests: records every POST and answers
//! as scripted; verifies Standard Webhooks signatures from the spec alone
//! (an HMAC computed here, not with reportd's code).
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

/// A tenant's secret for tests (the Standard Webhooks specification's example).
pub const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// One POST the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub id: String,
    pub timestamp: String,
    pub signature: String,
    pub body: Vec<u8>,
}

impl Received {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    /// Verifies the signature as a receiver would, from the spec alone.
    pub fn verify(&self, secret: &str) -> bool {
        let key = BASE64.decode(secret.trim_start_matches("whsec_")).unwrap();
        let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
        mac.update(format!("{}.{}.", self.id, self.timestamp).as_bytes());
        mac.update(&self.body);
        let expected = format!("v1,{}", BASE64.encode(mac.finalize().into_bytes()));
        self.signature.split(' ').any(|s| s == expected)
    }
}

/// How the receiver answers one request.
#[derive(Debug, Clone, Copy)]
pub enum Answer {
    Status(u16),
    /// Never: the request hangs (a receiver that is stuck, or a sender that dies meanwhile).
    Hang,
}

#[derive(Default)]
struct ReceiverState {
    got: Mutex<Vec<Received>>,
    /// Answers, in order; 200 once they run out.
    script: Mutex<VecDeque<Answer>>,
}

pub struct Receiver {
    pub url: String,
    state: Arc<ReceiverState>,
}

impl Receiver {
    pub async fn start(script: &[u16]) -> Receiver {
        Self::answering(&script.iter().map(|&c| Answer::Status(c)).collect::<Vec<_>>()).await
    }

    pub async fn answering(script: &[Answer]) -> Receiver {
        let state = Arc::new(ReceiverState { got: Mutex::default(), script: Mutex::new(script.iter().copied().collect()) });
        let shared = web::Data::from(state.clone());
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = HttpServer::new(move || {
            App::new().app_data(shared.clone()).route("/hook", web::post().to(receive))
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .unwrap()
        .run();
        actix_rt::spawn(server);
        Receiver { url: format!("http://127.0.0.1:{port}/hook"), state }
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.got.lock().unwrap().clone()
    }

    pub async fn wait_for(&self, n: usize, limit: Duration) -> Vec<Received> {
        let start = Instant::now();
        loop {
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            assert!(start.elapsed() < limit, "the receiver got {} of {n} webhooks in {limit:?}", got.len());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn receive(req: HttpRequest, body: web::Bytes, state: web::Data<ReceiverState>) -> HttpResponse {
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let answer = state.script.lock().unwrap().pop_front().unwrap_or(Answer::Status(200));
    state.got.lock().unwrap().push(Received {
        id: header("webhook-id"),
        timestamp: header("webhook-timestamp"),
        signature: header("webhook-signature"),
        body: body.to_vec(),
    });
    match answer {
        Answer::Status(code) => HttpResponse::build(actix_web::http::StatusCode::from_u16(code).unwrap()).finish(),
        Answer::Hang => std::future::pending().await,
    }
}

