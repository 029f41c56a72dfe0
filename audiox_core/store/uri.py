"""URI hygiene: credentials, presigned signatures and tokens removed from anything shown or stored."""

from __future__ import annotations

import re

# A URL: scheme, "://", then everything up to whitespace, a quote or a closing bracket.
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>()\[\]{}]+")


# Userinfo after the scheme: ``user@`` or ``user:password@`` (the password may hold '/': AWS secret
# keys do, and a careless ``s3://KEY:SECRET@bucket`` is not percent-encoded).
_USERINFO = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/?#@\s]*(?::[^@?#\s]*)?@)")


# Names whose value is a credential (AWS SigV4/V2 presigned URLs, GCS, Azure SAS, AWS config files,
# botocore's parameter dumps), as ``name=value`` or ``'name': 'value'``.
_SECRET_NAMES = (
    r"x-amz-signature|x-amz-credential|x-amz-security-token|awsaccesskeyid|signature|x-goog-signature|"
    r"x-goog-credential|sig|aws_secret_access_key|aws_session_token|aws_security_token|secret_access_key|"
    r"secretaccesskey|sessiontoken|password|passwd|access_token|token"
)


_SECRET_VALUE = re.compile(rf"(?i)(?<![A-Za-z0-9_-])({_SECRET_NAMES})([\"']?\s*[=:]\s*[\"']?)([^\s&\"',;)}}]+)")


# AWS access key ids (AKIA… long-term, ASIA… temporary): identify an account's credentials.
_ACCESS_KEY_ID = re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b")


REDACTED = "***"


def public_uri(uri: str) -> str:
    """``uri`` without userinfo (user and password), query string and fragment: safe to store and show.
    Local paths (no ``scheme://``) are returned as they are."""
    m = _USERINFO.match(uri)
    if m is None and "://" not in uri:
        return uri
    rest = uri[m.end() :] if m else uri.split("://", 1)[1]
    scheme = m.group("scheme") if m else uri.split("://", 1)[0] + "://"
    return scheme + re.split(r"[?#]", rest, maxsplit=1)[0]


def secret_in_uri(uri: str) -> bool:
    """Whether ``uri`` carries credentials: userinfo, or a signature/credential/token query parameter
    (a presigned URL)."""
    if _USERINFO.match(uri):
        return True
    query = re.split(r"[?#]", uri, maxsplit=1)[1] if "://" in uri and re.search(r"[?#]", uri) else ""
    return bool(_SECRET_VALUE.search(query.replace("?", "&")))


def scrub(text: str) -> str:
    """``text`` with every URL cleaned by ``public_uri`` and credential values (signatures, secret
    keys, tokens, passwords, access key ids) replaced by ``***``: for anything shown or stored."""
    text = _URL.sub(lambda m: public_uri(m.group(0)), text)
    text = _SECRET_VALUE.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)
    return _ACCESS_KEY_ID.sub(REDACTED, text)
