// Real credentials for the tests that start real Prometheus or Alertmanager with the stack's
// rendered web config (templates/web.yml): a password and its bcrypt hash, and a self-signed
// certificate, made by the very functions `deploy apply` generates them with, written where
// the containers' start scripts write them (secrets/ beside the config). Plus an HTTPS client
// (curl) that verifies the certificate against itself as the CA and sends basic auth.

use super::render::render_with;
use deploy::render::{secret_marker, RenderContext};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

pub const USER: &str = "grafana";

/// The credentials written under one directory.
#[derive(Clone)]
pub struct WebAuth {
    pub password: String,
    /// The certificate, which is also the CA clients trust.
    pub ca: PathBuf,
    /// curl's config holding `user = "grafana:PASSWORD"` (kept off the command line).
    curl_auth: PathBuf,
}

impl WebAuth {
    /// Writes `dir`/secrets/{web_password,tls.crt,tls.key}, `dir`/web.yml (the rendered
    /// template, its bcrypt marker filled in as the start script would) and
    /// `dir`/web-client.yml.
    pub fn install(dir: &Path, ctx: &RenderContext) -> WebAuth {
        let password = format!("test-{}", std::process::id()) + "-Q7w9e2r4t6y8u0";
        let auth: Value =
            serde_json::from_str(&deploy::aws::secrets::basic_auth(USER, &password).unwrap())
                .unwrap();
        let tls: Value = serde_json::from_str(
            &deploy::aws::secrets::self_signed(&["localhost".to_string()], 1).unwrap(),
        )
        .unwrap();
        let secrets = dir.join("secrets");
        std::fs::create_dir_all(&secrets).unwrap();
        std::fs::write(secrets.join("web_password"), &password).unwrap();
        std::fs::write(secrets.join("tls.crt"), tls["cert"].as_str().unwrap()).unwrap();
        std::fs::write(secrets.join("tls.key"), tls["key"].as_str().unwrap()).unwrap();
        let web = render_with("web.yml", ctx);
        let marker = secret_marker("WEB_BCRYPT");
        assert_eq!(web.matches(&marker).count(), 1, "{web}");
        std::fs::write(
            dir.join("web.yml"),
            web.replace(&marker, auth["bcrypt"].as_str().unwrap()),
        )
        .unwrap();
        std::fs::write(
            dir.join("web-client.yml"),
            render_with("web-client.yml", ctx),
        )
        .unwrap();
        let curl_auth = dir.join("curl-auth");
        std::fs::write(&curl_auth, format!("user = \"{USER}:{password}\"\n")).unwrap();
        WebAuth {
            password,
            ca: secrets.join("tls.crt"),
            curl_auth,
        }
    }

    /// GET https://localhost:`port``path` (to 127.0.0.1), verifying the certificate against
    /// the CA, with basic auth: (status, body).
    pub fn get(&self, port: u16, path: &str) -> std::io::Result<(u16, String)> {
        self.curl(port, path, true)
    }

    /// The same request without credentials.
    pub fn get_anonymous(&self, port: u16, path: &str) -> std::io::Result<(u16, String)> {
        self.curl(port, path, false)
    }

    /// POST a JSON body, authenticated: (status, body).
    pub fn post_json(&self, port: u16, path: &str, body: &str) -> std::io::Result<(u16, String)> {
        self.curl_with(
            port,
            path,
            true,
            &[
                "-H",
                "Content-Type: application/json",
                "--data-binary",
                body,
            ],
        )
    }

    fn curl(&self, port: u16, path: &str, auth: bool) -> std::io::Result<(u16, String)> {
        self.curl_with(port, path, auth, &[])
    }

    fn curl_with(
        &self,
        port: u16,
        path: &str,
        auth: bool,
        extra: &[&str],
    ) -> std::io::Result<(u16, String)> {
        let mut cmd = Command::new(curl());
        cmd.args(extra);
        cmd.args(["-sS", "-g", "--max-time", "20", "-w", "\n%{http_code}"])
            .arg("--cacert")
            .arg(&self.ca)
            .arg("--resolve")
            .arg(format!("localhost:{port}:127.0.0.1"));
        if auth {
            cmd.arg("-K").arg(&self.curl_auth);
        }
        let out = cmd
            .arg(format!("https://localhost:{port}{path}"))
            .output()?;
        if !out.status.success() {
            return Err(std::io::Error::other(format!(
                "curl: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, status) = text.rsplit_once('\n').unwrap_or(("", &text));
        Ok((status.trim().parse().unwrap_or(0), body.to_string()))
    }
}

/// curl, or a failure saying how to install it.
pub fn curl() -> PathBuf {
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|d| d.join("curl"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("curl is not installed: apt-get install curl"))
}

/// Plain HTTP to the HTTPS port gets Go's TLS server's own refusal (400, "Client sent an HTTP
/// request to an HTTPS server"), not an API answer. Anything else is false, a connection
/// error included: a server that is down refuses nothing.
pub fn plain_http_refused(port: u16) -> bool {
    match super::http_request(port, "GET", "/api/v1/status/buildinfo", b"") {
        Ok((status, body)) => {
            status == 400 && body.contains("Client sent an HTTP request to an HTTPS server")
        }
        Err(_) => false,
    }
}
