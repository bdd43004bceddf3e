// The first errors someone new to deploy meets — no credentials, an expired SSO sign-in, no
// region, no stack file — run through the real binary in a fresh HOME: each says what is wrong
// and what to do, exits 1, and (for all but the IMDS case, where the answer is the metadata
// service's) sends nothing: the recording proxy stands where AWS would be and counts.

mod common;

use common::{repo_root, run_with_input, stderr, stdout, TestEnv};
use std::process::Output;

/// An empty home directory: no ~/.aws at all.
fn empty_home() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("deploy-home-")
        .tempdir()
        .expect("temp HOME")
}

#[track_caller]
fn assert_says(out: &Output, needles: &[&str]) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(1), "exit code; stderr:\n{err}");
    for needle in needles {
        assert!(err.contains(needle), "stderr lacks {needle:?}:\n{err}");
    }
}

#[track_caller]
fn assert_no_aws_call(env: &TestEnv) {
    let calls = env.proxy.calls();
    assert!(
        calls.is_empty(),
        "expected no request, the proxy saw {calls:?}"
    );
}

/// What every "no credentials" message must tell: the sources tried and the ways out.
const NO_CREDENTIALS_TELLS: &[&str] = &[
    "error: no AWS credentials found",
    "AWS_ACCESS_KEY_ID",
    "shared config and credentials files",
    "SSO",
    "web identity",
    "instance metadata",
    "AWS_PROFILE",
    "aws sso login",
    "bash scripts/quickstart.sh",
];

#[test]
fn without_credentials_plan_says_where_it_looked_and_what_to_do() {
    let env = TestEnv::new();
    let home = empty_home();
    let metadata_off = [("AWS_EC2_METADATA_DISABLED", "true")];
    let out = env.deploy_as_new_user(home.path(), &repo_root(), &["plan"], &metadata_off);
    assert_says(&out, NO_CREDENTIALS_TELLS);
    assert_says(&out, &["profile `default`", "-v shows"]);
    let err = stderr(&out);
    assert!(!err.contains("dispatch failure"), "{err}");
    assert!(!err.contains("Ec2InstanceMetadata"), "{err}");
    assert_no_aws_call(&env);

    // -v adds the SDK's own chain of causes, naming each provider it tried.
    let out = env.deploy_as_new_user(home.path(), &repo_root(), &["plan", "-v"], &metadata_off);
    assert_says(&out, NO_CREDENTIALS_TELLS);
    assert_says(
        &out,
        &[
            "The AWS SDK's chain of causes",
            "Environment: ",
            "Ec2InstanceMetadata: ",
        ],
    );
    assert_no_aws_call(&env);
}

#[test]
fn without_credentials_off_ec2_the_metadata_services_refusal_reads_as_no_credentials() {
    // The issue's case: metadata is not switched off, and the instance metadata service, the
    // last source tried, refuses the session token request with 403 (what IMDS answers when it
    // is disabled or the caller may not use it; played by the proxy, not forwarded to moto).
    let env = TestEnv::new();
    env.proxy
        .inject(serde_json::json!([{"status": 403, "code": "Forbidden", "times": 100}]));
    let home = empty_home();
    let imds = env.proxy_endpoint();
    let to_proxy = [("AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.as_str())];
    let out = env.deploy_as_new_user(home.path(), &repo_root(), &["plan", "-v"], &to_proxy);
    assert_says(&out, NO_CREDENTIALS_TELLS);
    assert_says(&out, &["failed to load IMDS session token"]);
    let calls = env.proxy.calls();
    assert!(!calls.is_empty(), "the metadata service was not asked");
    // Only the metadata service was asked: no AWS API request (those are signed) was sent.
    assert!(
        calls.iter().all(|c| c.service.is_empty() && c.injected),
        "{calls:?}"
    );
}

/// ~/.aws of someone whose SSO sign-in (`aws sso login`) has expired: profile `dev` uses the
/// sso-session `corp`, and the cached token, at the path the SDK reads
/// (~/.aws/sso/cache/SHA1(session name).json), expired in 2020 and has no refresh token.
fn expired_sso_home() -> tempfile::TempDir {
    let home = empty_home();
    let aws = home.path().join(".aws");
    std::fs::create_dir_all(aws.join("sso/cache")).unwrap();
    std::fs::write(
        aws.join("config"),
        "[profile dev]\n\
         sso_session = corp\n\
         sso_account_id = 123456789012\n\
         sso_role_name = Deployer\n\
         region = us-west-2\n\
         \n\
         [sso-session corp]\n\
         sso_start_url = https://corp.awsapps.com/start\n\
         sso_region = us-east-1\n\
         sso_registration_scopes = sso:account:access\n",
    )
    .unwrap();
    // `aws sso login` names the session's cache file by the SHA-1 of the session name.
    let name = sha1_hex(b"corp");
    std::fs::write(
        aws.join("sso/cache").join(format!("{name}.json")),
        r#"{"startUrl": "https://corp.awsapps.com/start", "region": "us-east-1",
            "accessToken": "expired-access-token", "expiresAt": "2020-01-01T00:00:00Z"}"#,
    )
    .unwrap();
    home
}

/// SHA-1 by the system's `sha1sum` (coreutils), so the test does not compute the SDK's cache
/// key with code of its own.
fn sha1_hex(data: &[u8]) -> String {
    let sha1sum = std::process::Command::new("sha1sum");
    let out = run_with_input(sha1sum, data, "apt-get install coreutils");
    assert!(out.status.success(), "sha1sum: {}", stderr(&out));
    stdout(&out)[..40].to_string()
}

#[test]
fn an_expired_sso_sign_in_says_to_sign_in_again_with_that_profile() {
    let env = TestEnv::new();
    let home = expired_sso_home();
    let metadata_off = [("AWS_EC2_METADATA_DISABLED", "true")];
    for (args, profile_env) in [
        (vec!["plan", "--profile", "dev"], None),
        (vec!["plan"], Some(("AWS_PROFILE", "dev"))),
    ] {
        let mut extra = metadata_off.to_vec();
        extra.extend(profile_env);
        let out = env.deploy_as_new_user(home.path(), &repo_root(), &args, &extra);
        assert_says(
            &out,
            &[
                "error: the AWS SSO sign-in of profile `dev` has expired",
                "aws sso login --profile dev",
            ],
        );
        assert!(
            !stderr(&out).contains("dispatch failure"),
            "{}",
            stderr(&out)
        );
        assert_no_aws_call(&env);
    }
    let out = env.deploy_as_new_user(
        home.path(),
        &repo_root(),
        &["plan", "--profile", "dev", "-v"],
        &metadata_off,
    );
    assert_says(&out, &["the SSO token has expired"]);
    assert_no_aws_call(&env);
}

#[test]
fn a_profile_the_files_do_not_define_is_named() {
    let env = TestEnv::new();
    let home = empty_home();
    std::fs::create_dir_all(home.path().join(".aws")).unwrap();
    std::fs::write(
        home.path().join(".aws/config"),
        "[default]\nregion = us-west-2\n",
    )
    .unwrap();
    let out = env.deploy_as_new_user(
        home.path(),
        &repo_root(),
        &["plan", "--profile", "prod"],
        &[("AWS_EC2_METADATA_DISABLED", "true")],
    );
    assert_says(
        &out,
        &["profile `prod` is not defined", "no AWS credentials found"],
    );
    assert_no_aws_call(&env);
}

#[test]
fn with_no_region_anywhere_plan_names_the_three_ways_to_give_one() {
    let env = TestEnv::new();
    let home = empty_home();
    let stack = env.stack_copy("no-region.yaml", |text| {
        let without: String = text
            .lines()
            .filter(|l| !l.starts_with("region:"))
            .map(|l| format!("{l}\n"))
            .collect();
        assert_ne!(without, text, "the reference stack names its region");
        without
    });
    let out = env.deploy_as_new_user(
        home.path(),
        &repo_root(),
        &["plan", "-f", &stack],
        &[
            ("AWS_EC2_METADATA_DISABLED", "true"),
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
        ],
    );
    assert_says(
        &out,
        &[
            "error: no AWS region is set",
            "--region",
            "`region:`",
            "AWS_REGION",
        ],
    );
    assert_no_aws_call(&env);
}

#[test]
fn a_missing_stack_file_says_it_does_not_exist_and_where_the_default_is() {
    let env = TestEnv::new();
    let home = empty_home();
    let creds = [
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
    ];
    let out = env.deploy_as_new_user(
        home.path(),
        &repo_root(),
        &["plan", "-f", "/nonexistent.yaml"],
        &creds,
    );
    assert_says(
        &out,
        &[
            "error: the stack file /nonexistent.yaml does not exist",
            "-f",
            "stacks/monitoring.yaml",
        ],
    );
    assert!(!stderr(&out).contains(":0:0:"), "{}", stderr(&out));
    assert_no_aws_call(&env);

    // Without -f, from a directory that has no stacks/monitoring.yaml.
    let elsewhere = home.path();
    let out = env.deploy_as_new_user(home.path(), elsewhere, &["plan"], &creds);
    assert_says(
        &out,
        &[
            "error: no stack file",
            "stacks/monitoring.yaml",
            &elsewhere.display().to_string(),
            "-f FILE",
        ],
    );
    let out = env.deploy_as_new_user(home.path(), elsewhere, &["validate"], &creds);
    assert_says(&out, &["error: no stack file"]);
    assert_no_aws_call(&env);
}
