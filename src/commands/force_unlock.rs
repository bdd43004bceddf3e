//! `deploy force-unlock LOCK_ID`: removes a stack environment's lock whose holder is gone,
//! found by its id alone (no stack file needed).

use crate::aws::Aws;
use crate::cli::AwsArgs;
use crate::run::Failure;

pub async fn run(lock_id: &str, aws_args: &AwsArgs) -> Result<(), Failure> {
    let aws = Aws::connect(aws_args.profile.as_deref(), aws_args.region.as_deref()).await?;
    let was = crate::lock::force_unlock(&aws, lock_id).await?;
    eprintln!(
        "Unlocked {}/{}; it was held for {}",
        was.stack,
        was.environment,
        was.describe()
    );
    Ok(())
}
