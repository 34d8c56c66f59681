//! The container image (`packaging/Containerfile`, context from `packaging/build-image.sh`) is
//! built with podman, offline and from scratch, and proven self-contained: the container runs
//! as the unprivileged user, answers `/health/ready`, passes its own `HEALTHCHECK`, and resolves
//! a compose-style service name from `/etc/hosts`. Where this machine refuses to run containers
//! (podman's default runtime fails on `setrlimit` or on hybrid cgroups here; the test tries
//! `--ulimit` and runc first), and whenever the test runs as root, the image's exported root
//! filesystem also serves under `chroot --userspec=10001:10001` with a fresh `/data`.
//!
//! The binary is `MEDIANEST_IMAGE_BINARY` when set (`target/release/medianest` for the size the
//! README gives), else the debug binary cargo built for the tests. Without podman the test says
//! why and passes, unless `MEDIANEST_REQUIRE_IMAGE_TEST` is set (`tests/run` sets it, after
//! installing podman), when its absence is a failure.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_medianest");
const READY_WITHIN: Duration = Duration::from_secs(60);

fn podman_works() -> bool {
    let works = Command::new("podman")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !works {
        assert!(
            std::env::var_os("MEDIANEST_REQUIRE_IMAGE_TEST").is_none(),
            "MEDIANEST_REQUIRE_IMAGE_TEST is set but podman does not run (tests/run installs it)"
        );
        eprintln!("skipped: podman is not installed (tests/run installs it with apt-get)");
    }
    works
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs `cmd` to completion, failing with its output unless it succeeds.
fn ok(cmd: &mut Command) -> Output {
    let out = cmd.stdin(Stdio::null()).output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}\n{}{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    out
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Polls `http://addr/health/ready` until it answers 200; `alive` says whether the server can
/// still come up, and `log` what to show when it does not.
fn wait_ready(addr: SocketAddr, mut alive: impl FnMut() -> bool, log: impl Fn() -> String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(2)))
        .http_status_as_error(false)
        .build()
        .into();
    let url = format!("http://{addr}/health/ready");
    let deadline = Instant::now() + READY_WITHIN;
    loop {
        if let Ok(mut response) = agent.get(&url).call()
            && response.status() == 200
        {
            let body = response.body_mut().read_to_string().unwrap();
            assert!(body.contains("\"ready\""), "{body}");
            return;
        }
        assert!(
            alive(),
            "the server stopped before it was ready:\n{}",
            log()
        );
        assert!(
            Instant::now() < deadline,
            "{url} not ready within {READY_WITHIN:?}:\n{}",
            log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Removes the containers and the image the test made, and stops a chroot server.
struct Cleanup {
    image: String,
    containers: Vec<(Vec<String>, String)>,
    child: Option<Child>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
        for (runtime, name) in &self.containers {
            let _ = Command::new("podman")
                .args(runtime)
                .args(["rm", "-f", "-t", "0", name])
                .output();
        }
        let _ = Command::new("podman")
            .args(["rmi", "-f", &self.image])
            .output();
    }
}

/// The open-file and process limits to give the container: podman's defaults are above what
/// an unprivileged container host allows, and crun then fails on `setrlimit`.
fn ulimits() -> Vec<String> {
    let hard = |resource| {
        rustix::process::getrlimit(resource)
            .maximum
            .unwrap_or(u64::MAX)
    };
    let nofile = hard(rustix::process::Resource::Nofile).min(8192);
    let nproc = hard(rustix::process::Resource::Nproc).min(4096);
    vec![
        "--ulimit".into(),
        format!("nofile={nofile}:{nofile}"),
        "--ulimit".into(),
        format!("nproc={nproc}:{nproc}"),
    ]
}

#[test]
fn the_image_builds_from_scratch_and_serves_as_an_unprivileged_user() {
    if !podman_works() {
        return;
    }
    let binary = std::env::var_os("MEDIANEST_IMAGE_BINARY")
        .map_or_else(|| PathBuf::from(BIN), |p| std::fs::canonicalize(p).unwrap());
    let work = tempfile::tempdir().unwrap();
    let context = work.path().join("context");
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    ok(Command::new(manifest.join("packaging/build-image.sh"))
        .arg(&binary)
        .arg(&context)
        .current_dir(manifest));

    let tag = format!("localhost/medianest-image-test:{}", std::process::id());
    let mut cleanup = Cleanup {
        image: tag.clone(),
        containers: Vec::new(),
        child: None,
    };
    ok(Command::new("podman")
        .args(["build", "--format", "docker", "--pull=never", "-t", &tag])
        .arg(&context));

    // What the image says about itself.
    let inspect = |format: &str| {
        let out = ok(Command::new("podman").args(["image", "inspect", "--format", format, &tag]));
        text(&out.stdout).trim().to_owned()
    };
    assert_eq!(inspect("{{.Config.User}}"), "10001:10001");
    assert_eq!(
        inspect("{{json .Config.ExposedPorts}}"),
        r#"{"4000/tcp":{}}"#
    );
    assert_eq!(inspect("{{json .Config.Volumes}}"), r#"{"/data":{}}"#);
    let env = inspect("{{json .Config.Env}}");
    for var in [
        "MEDIANEST_SERVER__LISTEN=0.0.0.0:4000",
        "MEDIANEST_DATA_DIR=/data",
        "TZ=UTC",
    ] {
        assert!(env.contains(var), "{var} not in {env}");
    }
    assert_eq!(
        inspect("{{json .HealthCheck.Test}}"),
        r#"["CMD","/usr/local/bin/medianest","healthcheck"]"#
    );
    let size: u64 = inspect("{{.Size}}").parse().unwrap();
    eprintln!(
        "image built from {}: {:.1} MB",
        binary.display(),
        size as f64 / 1e6
    );

    // Run it: the default runtime, then runc, with limits this host allows.
    let port = free_port();
    let mut runtimes: Vec<Vec<String>> = vec![Vec::new()];
    if Command::new("runc").arg("--version").output().is_ok() {
        runtimes.push(vec!["--runtime".into(), "runc".into()]);
    }
    let mut ran = None;
    let mut refusals = Vec::new();
    for (i, runtime) in runtimes.iter().enumerate() {
        let name = format!("medianest-image-test-{}-{i}", std::process::id());
        cleanup.containers.push((runtime.clone(), name.clone()));
        let out = Command::new("podman")
            .args(runtime)
            .args(["run", "-d", "--name", &name])
            .args(ulimits())
            .args(["--add-host", "seerr:127.0.0.1"])
            .args(["-p", &format!("127.0.0.1:{port}:4000"), &tag])
            .output()
            .unwrap();
        if out.status.success() {
            ran = Some((runtime.clone(), name));
            break;
        }
        refusals.push(format!("{runtime:?}: {}", text(&out.stderr).trim()));
    }
    if let Some((runtime, name)) = &ran {
        let podman = |args: &[&str]| {
            let mut cmd = Command::new("podman");
            cmd.args(runtime).args(args);
            cmd
        };
        let running = || {
            let out = podman(&["inspect", "--format", "{{.State.Running}}", name])
                .output()
                .unwrap();
            text(&out.stdout).trim() == "true"
        };
        let logs = || text(&podman(&["logs", name]).output().unwrap().stderr);
        wait_ready(SocketAddr::from(([127, 0, 0, 1], port)), running, logs);
        // The image's own HEALTHCHECK, as the runtime runs it.
        ok(&mut podman(&["healthcheck", "run", name]));
        let health = ok(&mut podman(&[
            "inspect",
            "--format",
            "{{.State.Health.Status}}",
            name,
        ]));
        assert_eq!(text(&health.stdout).trim(), "healthy");
        // A service name from the /etc/hosts the runtime writes, resolved through the image's
        // nsswitch.conf and C library.
        ok(&mut podman(&[
            "exec",
            name,
            "/usr/local/bin/medianest",
            "healthcheck",
            "--url",
            "http://seerr:4000",
        ]));
        // It runs as the unprivileged user and made its database in the volume.
        let version = ok(&mut podman(&[
            "exec",
            name,
            "/usr/local/bin/medianest",
            "--version",
        ]));
        assert!(text(&version.stdout).starts_with("medianest "));
        let top = ok(&mut podman(&["top", name, "user", "huser"]));
        assert!(text(&top.stdout).contains("10001"), "{}", text(&top.stdout));
        eprintln!("podman {runtime:?} run: ready on 127.0.0.1:{port}");
    } else {
        eprintln!(
            "podman refuses to run containers here:\n{}\nchecking the exported root filesystem \
             under chroot",
            refusals.join("\n")
        );
    }

    // The image's root filesystem alone, under chroot: nothing from this machine but the kernel
    // (and the /etc/hosts a container runtime would write).
    let root = rustix::process::geteuid().is_root();
    if !root {
        assert!(
            ran.is_some(),
            "podman cannot run the image ({refusals:?}) and chroot needs root"
        );
        eprintln!("chroot check skipped: not root");
        return;
    }
    let name = format!("medianest-image-test-{}-export", std::process::id());
    cleanup.containers.push((Vec::new(), name.clone()));
    ok(Command::new("podman").args(["create", "--name", &name, &tag]));
    let exported = work.path().join("rootfs.tar");
    ok(Command::new("podman")
        .args(["export", "-o"])
        .arg(&exported)
        .arg(&name));
    let rootfs = work.path().join("rootfs");
    std::fs::create_dir(&rootfs).unwrap();
    ok(Command::new("tar")
        .arg("-xf")
        .arg(&exported)
        .arg("-C")
        .arg(&rootfs));
    {
        use std::os::unix::fs::MetadataExt;
        let data = std::fs::metadata(rootfs.join("data")).unwrap();
        assert_eq!((data.uid(), data.gid()), (10001, 10001), "/data's owner");
        assert_eq!(
            std::fs::read_dir(rootfs.join("data")).unwrap().count(),
            0,
            "a fresh /data"
        );
    }
    assert!(rootfs.join("usr/share/zoneinfo/Europe/Paris").is_file());
    std::fs::write(rootfs.join("etc/hosts"), "127.0.0.1 localhost seerr\n").unwrap();
    let port = free_port();
    let chroot = |args: &[&str]| {
        let mut cmd = Command::new("chroot");
        cmd.arg("--userspec=10001:10001")
            .arg(&rootfs)
            .arg("/usr/local/bin/medianest")
            .args(args)
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("MEDIANEST_SERVER__LISTEN", format!("127.0.0.1:{port}"))
            .env("MEDIANEST_DATA_DIR", "/data")
            .env("TZ", "Europe/Paris");
        cmd
    };
    let log = work.path().join("chroot.log");
    let log_file = std::fs::File::create(&log).unwrap();
    let child = chroot(&["serve"])
        .stdin(Stdio::null())
        .stdout(log_file.try_clone().unwrap())
        .stderr(log_file)
        .spawn()
        .unwrap();
    cleanup.child = Some(child);
    let log_text = || std::fs::read_to_string(&log).unwrap_or_default();
    wait_ready(
        SocketAddr::from(([127, 0, 0, 1], port)),
        || {
            cleanup
                .child
                .as_mut()
                .is_some_and(|c| c.try_wait().unwrap().is_none())
        },
        log_text,
    );
    ok(&mut chroot(&["healthcheck"]));
    ok(&mut chroot(&[
        "healthcheck",
        "--url",
        &format!("http://seerr:{port}"),
    ]));
    let unknown = chroot(&["healthcheck", "--url", &format!("http://plex:{port}")])
        .output()
        .unwrap();
    assert!(
        !unknown.status.success(),
        "a name that is not in /etc/hosts resolved"
    );
    assert!(rootfs.join("data/medianest.db").is_file(), "{}", log_text());
    eprintln!("chroot: ready on 127.0.0.1:{port}");
}
