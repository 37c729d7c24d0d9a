//! End to end in a real browser: Debian's `chromium`, driven headless over
//! WebDriver by `chromedriver` (package `chromium-driver`). Log in, filter
//! the held list, open a held message, release it with a reason, see it
//! arrive at the SMTP sink and the audit entry appear. A screenshot of the
//! list page is saved to `target/test-artifacts/admin-list.png` (and one of
//! the message page to `admin-message.png`).

mod admin_support;
mod common;

use admin_support::{PASSWORD, Setup, request, wait_for};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

fn find_binary(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    for dir in path.split(':').chain(["/usr/bin", "/usr/lib/chromium"]) {
        for n in names {
            let p = Path::new(dir).join(n);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

/// chromedriver on a free loopback port; killed on drop.
struct Driver {
    addr: SocketAddr,
    child: Child,
    session: String,
    _profile: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = request(
            self.addr,
            "DELETE",
            &format!("/session/{}", self.session),
            &[],
            b"",
        );
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Driver {
    fn start() -> Driver {
        let chromium = find_binary(&["chromium"]).unwrap_or_else(|| {
            panic!("the browser test needs Debian's `chromium` package: apt-get install chromium chromium-driver")
        });
        let chromedriver = find_binary(&["chromedriver"]).unwrap_or_else(|| {
            panic!("the browser test needs Debian's `chromium-driver` package (chromedriver): apt-get install chromium chromium-driver")
        });
        let addr = common::smtp::free_addr();
        let child = Command::new(chromedriver)
            .arg(format!("--port={}", addr.port()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        wait_for("chromedriver", 20, || {
            let r = std::net::TcpStream::connect(addr).ok()?;
            drop(r);
            let status = request(addr, "GET", "/status", &[], b"");
            (status.status == 200).then_some(())
        });
        let profile = tempfile::tempdir().unwrap();
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium.to_string_lossy(),
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu",
                    "--disable-dev-shm-usage", "--window-size=1400,1000",
                    format!("--user-data-dir={}", profile.path().display()),
                ]
            }
        }}});
        let r = post(addr, "/session", &caps);
        let session = r["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {r}"))
            .to_string();
        Driver {
            addr,
            child,
            session,
            _profile: profile,
        }
    }

    fn cmd(&self, method: &str, path: &str, body: &Value) -> Value {
        let path = format!("/session/{}{path}", self.session);
        let r = if method == "GET" {
            request(self.addr, "GET", &path, &[], b"")
        } else {
            request(
                self.addr,
                "POST",
                &path,
                &[("Content-Type", "application/json")],
                body.to_string().as_bytes(),
            )
        };
        let v: Value = serde_json::from_slice(&r.body)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}: {}", r.text()));
        assert_eq!(r.status, 200, "{method} {path}: {v}");
        v["value"].clone()
    }

    fn goto(&self, url: &str) {
        self.cmd("POST", "/url", &json!({ "url": url }));
    }

    fn url(&self) -> String {
        self.cmd("GET", "/url", &Value::Null)
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    fn source(&self) -> String {
        self.cmd("GET", "/source", &Value::Null)
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    fn find(&self, css: &str) -> String {
        let v = self.cmd(
            "POST",
            "/element",
            &json!({"using": "css selector", "value": css}),
        );
        v[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("no element {css}: {v}"))
            .to_string()
    }

    fn type_into(&self, css: &str, text: &str) {
        let e = self.find(css);
        self.cmd(
            "POST",
            &format!("/element/{e}/value"),
            &json!({ "text": text }),
        );
    }

    fn click(&self, css: &str) {
        let e = self.find(css);
        self.cmd("POST", &format!("/element/{e}/click"), &json!({}));
    }

    fn text(&self, css: &str) -> String {
        let e = self.find(css);
        self.cmd("GET", &format!("/element/{e}/text"), &Value::Null)
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    fn screenshot(&self, to: &Path) {
        let b64 = self.cmd("GET", "/screenshot", &Value::Null);
        let png = base64_decode(b64.as_str().unwrap_or(""));
        assert!(png.starts_with(b"\x89PNG"), "screenshot is a PNG");
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::write(to, png).unwrap();
    }
}

fn post(addr: SocketAddr, path: &str, body: &Value) -> Value {
    let r = request(
        addr,
        "POST",
        path,
        &[("Content-Type", "application/json")],
        body.to_string().as_bytes(),
    );
    serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("{path}: {e}: {}", r.text()))
}

fn base64_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for v in s.bytes().filter_map(val) {
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

#[test]
fn log_in_filter_open_release_and_see_the_audit_entry_in_chromium() {
    let s = Setup::start();
    s.add_user("ict", "admin");
    let pd = s.hold_pupil_data("4QWEB001", "Referral for Year 7 pupil");
    let virus = s.hold_virus("4QWEB002");
    let base = format!("http://{}", s.admin());
    let d = Driver::start();

    // Log in through the form.
    d.goto(&format!("{base}/login"));
    d.type_into("#user", "ict");
    d.type_into("#password", PASSWORD);
    d.click("form.login button[type=submit]");
    wait_for("the held list after login", 20, || {
        (d.url() == format!("{base}/")).then_some(())
    });
    let list = d.source();
    assert!(
        list.contains(&format!("/message/{pd}")) && list.contains(&format!("/message/{virus}"))
    );

    // Filter on personal data with the form.
    d.click("select[name=category] option[value=personal_data]");
    d.click("form.filters button[type=submit]");
    wait_for("the filtered list", 20, || {
        d.url().contains("category=personal_data").then_some(())
    });
    let list = d.source();
    assert!(list.contains(&format!("/message/{pd}")), "{list}");
    assert!(!list.contains(&format!("/message/{virus}")), "{list}");
    let shot = PathBuf::from(common::MANIFEST_DIR).join("target/test-artifacts/admin-list.png");
    d.screenshot(&shot);
    assert!(std::fs::metadata(&shot).unwrap().len() > 1000);

    // Open the held message: findings (masked) and the plain-text body.
    d.click(&format!("a[href=\"/message/{pd}\"]"));
    wait_for("the message page", 20, || {
        d.url().ends_with(&format!("/message/{pd}")).then_some(())
    });
    d.screenshot(
        &PathBuf::from(common::MANIFEST_DIR).join("target/test-artifacts/admin-message.png"),
    );
    let body = d.text("#body");
    assert!(body.contains("Dear Nurse Adeyemi"), "{body}");
    assert!(d.text("table.findings").contains("7032*****3"));

    // Release with a reason.
    d.type_into("#release-reason", "Referral agreed with the parent");
    d.click("#release");
    wait_for("the released page", 20, || {
        d.url().contains("done=released").then_some(())
    });
    assert!(d.text("#flash").starts_with("Released"));
    let got = wait_for("delivery at the sink", 20, || {
        let m = s.released();
        (!m.is_empty()).then_some(m)
    });
    assert_eq!(got.len(), 1);
    assert!(
        got[0].text().contains("X-Hallmonitor-Released: by=ict"),
        "{}",
        got[0].text()
    );

    // The audit log shows the release with its reason.
    d.goto(&format!("{base}/audit"));
    let audit = d.text("#audit");
    let line = audit
        .lines()
        .find(|l| l.contains("release") && l.contains(&pd))
        .unwrap_or_else(|| panic!("{audit}"));
    assert!(
        line.contains("ict") && line.contains("Referral agreed with the parent"),
        "{line}"
    );
    assert_eq!(s.released().len(), 1, "delivered once");
}
