"""Credential flags are recognised in both spellings and kept out of records and cache keys."""

from conveyor.beam_utils.flag_secrets import is_secret_flag, redact, without_secrets


def test_both_spellings_and_only_credential_flags():
    args = [
        "--runner=FlinkRunner",
        "--s3_secret_access_key=abc",
        "--s3_access_key_id",
        "AKIA",
        "--token=t",
        "--parallelism",
        "2",
        "--password",
    ]
    assert redact(args) == [
        "--runner=FlinkRunner",
        "--s3_secret_access_key=***",
        "--s3_access_key_id",
        "***",
        "--token=***",
        "--parallelism",
        "2",
        "--password",
    ]
    assert without_secrets(args) == ["--runner=FlinkRunner", "--parallelism", "2"]
    assert not is_secret_flag("--s3_endpoint_url=http://127.0.0.1:9000")
    assert not is_secret_flag("secret")  # a value, not a flag
