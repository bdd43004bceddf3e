//! What is wrong with the local AWS setup — no credentials, an expired SSO sign-in, no region —
//! said in words a new user can act on, in one place. The SDK's own chain of causes is added
//! under `-v` (it names every source it tried, which helps an expert and buries a beginner).

use super::AwsError;
use aws_credential_types::provider::error::CredentialsError;
use std::error::Error;

/// `AwsError::service` of a problem found on this machine before any request was sent.
pub const LOCAL: &str = "local AWS configuration";

/// `AwsError::code`s of the local setup problems.
pub const NO_CREDENTIALS: &str = "NoCredentials";
pub const SSO_LOGIN_NEEDED: &str = "SsoLoginNeeded";
pub const CREDENTIALS_FAILED: &str = "CredentialsFailed";
pub const NO_REGION: &str = "NoRegion";

/// The profile the SDK reads: `--profile`, else `AWS_PROFILE`, else `default`.
pub fn profile_in_use(profile: Option<&str>) -> String {
    profile
        .map(str::to_string)
        .or_else(|| std::env::var("AWS_PROFILE").ok().filter(|p| !p.is_empty()))
        .unwrap_or_else(|| "default".into())
}

/// A shared file's path as the SDK resolves it: the variable, else `~/.aws/NAME`.
fn shared_file(var: &str, name: &str) -> String {
    std::env::var(var)
        .ok()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| format!("~/.aws/{name}"))
}

fn problem(operation: &'static str, code: &str, message: String) -> AwsError {
    AwsError {
        service: LOCAL,
        operation,
        address: None,
        code: Some(code.into()),
        message,
        request_id: None,
    }
}

/// With `-v`, the SDK's chain of causes; without, where to find it.
fn sdk_causes(err: &dyn Error) -> String {
    if tracing::enabled!(target: "deploy", tracing::Level::INFO) {
        let chain = super::display_chain(err).replace('\n', "\n    ");
        format!("\nThe AWS SDK's chain of causes:\n    {chain}")
    } else {
        "\n(-v shows the AWS SDK's chain of causes.)".into()
    }
}

pub fn no_region(profile: Option<&str>) -> AwsError {
    problem(
        "LoadRegion",
        NO_REGION,
        format!(
            "no AWS region is set. deploy looked at --region, the stack's `region:`, the \
             environment variables AWS_REGION and AWS_DEFAULT_REGION, and `region` of profile \
             `{}` in {}.\n\
             To fix it, one of:\n  \
             - pass --region REGION (e.g. --region us-west-2)\n  \
             - add `region: REGION` to the stack file\n  \
             - export AWS_REGION=REGION",
            profile_in_use(profile),
            shared_file("AWS_CONFIG_FILE", "config"),
        ),
    )
}

/// The credentials error found in `err`'s chain of sources, if that is what it is.
pub fn credentials_error_in<'a>(err: &'a (dyn Error + 'static)) -> Option<&'a CredentialsError> {
    let mut next = Some(err);
    while let Some(e) = next {
        if let Some(found) = e.downcast_ref::<CredentialsError>() {
            return Some(found);
        }
        next = e.source();
    }
    None
}

/// Says what went wrong loading credentials for `profile` (`None`: as the SDK chose it) and
/// what to do about it.
pub fn credentials_problem(err: &CredentialsError, profile: Option<&str>) -> AwsError {
    let chain = super::display_chain(err);
    let profile = profile_in_use(profile);
    // The default chain stops at the first source that fails for another reason than "not
    // configured here". The instance metadata service is the last source: when it is what
    // failed, every other source had nothing, and this machine is no EC2 instance with a role
    // (IMDS answered 403 or could not be reached).
    let nothing_found =
        matches!(err, CredentialsError::CredentialsNotLoaded(_)) || chain.contains("IMDS");
    // The SSO token provider's "the SSO token has expired and cannot be refreshed" and "failed
    // to load the cached SSO token" (never signed in), and SSO's own answer to a revoked token.
    let sso = chain.contains("SSO token")
        || (chain.contains("GetRoleCredentials") && chain.contains("Unauthorized"));
    if sso {
        return problem(
            "LoadCredentials",
            SSO_LOGIN_NEEDED,
            format!(
                "the AWS SSO sign-in of profile `{profile}` has expired or was never made.\n\
                 To fix it: aws sso login --profile {profile}   (then run deploy again){}",
                sdk_causes(err)
            ),
        );
    }
    if nothing_found {
        // A profile named with --profile or AWS_PROFILE that the files do not define.
        let undefined = chain.contains(&format!("profile `{profile}` was not defined"));
        return problem(
            "LoadCredentials",
            NO_CREDENTIALS,
            format!(
                "{}no AWS credentials found. deploy looked, in this order, at:\n  \
                 - the environment variables AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY\n  \
                 - profile `{profile}` in the shared config and credentials files ({}, {})\n  \
                 - SSO (that profile's sso_session or sso_start_url)\n  \
                 - web identity (AWS_WEB_IDENTITY_TOKEN_FILE with AWS_ROLE_ARN)\n  \
                 - container credentials (ECS) and the EC2 instance metadata service\n\
                 To fix it, one of:\n  \
                 - use a profile that has credentials: --profile NAME, or export AWS_PROFILE=NAME\n  \
                 - sign in with SSO: aws sso login --profile NAME\n  \
                 - try deploy locally against a simulated AWS, no account needed: bash scripts/quickstart.sh{}",
                if undefined {
                    format!("profile `{profile}` is not defined in the shared config or credentials file; ")
                } else {
                    String::new()
                },
                shared_file("AWS_CONFIG_FILE", "config"),
                shared_file("AWS_SHARED_CREDENTIALS_FILE", "credentials"),
                sdk_causes(err)
            ),
        );
    }
    // Anything else (a profile that is not defined, a failing credential_process, a role
    // that cannot be assumed) is only told by the SDK's own words: always show them.
    problem(
        "LoadCredentials",
        CREDENTIALS_FAILED,
        format!(
            "AWS credentials could not be loaded (profile `{profile}`): {}",
            chain.replace('\n', "\n    ")
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_smithy_runtime_api::client::result::{ConnectorError, SdkError};

    /// The shape the SDK's orchestrator gives a request whose identity could not be resolved:
    /// a dispatch failure wrapping the credentials error (nothing was sent).
    fn dispatch_failure(e: CredentialsError) -> SdkError<std::io::Error, ()> {
        SdkError::dispatch_failure(ConnectorError::other(Box::new(e), None))
    }

    #[test]
    fn a_failed_call_is_classified_by_the_credentials_error_it_carries() {
        let err = dispatch_failure(CredentialsError::not_loaded(
            "no credentials found in chain",
        ));
        let found = credentials_error_in(&err).expect("the credentials error");
        let problem = credentials_problem(found, Some("dev"));
        assert_eq!(problem.code.as_deref(), Some(NO_CREDENTIALS));
        assert!(problem.message.contains("profile `dev`"), "{problem}");
        let plain = dispatch_failure_io();
        assert!(credentials_error_in(&plain).is_none());
    }

    fn dispatch_failure_io() -> SdkError<std::io::Error, ()> {
        SdkError::dispatch_failure(ConnectorError::io(Box::new(std::io::Error::other("reset"))))
    }

    #[test]
    fn imds_failing_last_means_nothing_was_found() {
        let err = CredentialsError::provider_error("failed to load IMDS session token");
        assert_eq!(
            credentials_problem(&err, None).code.as_deref(),
            Some(NO_CREDENTIALS)
        );
    }

    #[test]
    fn an_expired_sso_token_says_to_sign_in_with_that_profile() {
        let err =
            CredentialsError::provider_error("the SSO token has expired and cannot be refreshed");
        let problem = credentials_problem(&err, Some("team-admin"));
        assert_eq!(problem.code.as_deref(), Some(SSO_LOGIN_NEEDED));
        assert!(
            problem
                .to_string()
                .contains("aws sso login --profile team-admin"),
            "{problem}"
        );
    }

    #[test]
    fn other_failures_keep_the_sdks_words() {
        let err = CredentialsError::invalid_configuration("profile `nope` was not defined");
        let problem = credentials_problem(&err, Some("nope"));
        assert_eq!(problem.code.as_deref(), Some(CREDENTIALS_FAILED));
        assert!(problem.to_string().contains("`nope` was not defined"));
    }
}
