"""
moto's server as the local stack runs it, with one check of S3's that moto leaves out: a request
that names its bucket's expected owner (the x-amz-expected-bucket-owner header, ExpectedBucketOwner
in the SDK) is refused with 403 AccessDenied unless that account owns the bucket. Every bucket on
the local stack belongs to moto's one account.
"""
import sys

import moto.server
from moto.core import DEFAULT_ACCOUNT_ID

ACCESS_DENIED = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b"<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>"
)


class ExpectedBucketOwner:
    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        expected = environ.get("HTTP_X_AMZ_EXPECTED_BUCKET_OWNER")
        if expected is not None and expected != DEFAULT_ACCOUNT_ID:
            body = b"" if environ.get("REQUEST_METHOD") == "HEAD" else ACCESS_DENIED
            start_response("403 Forbidden", [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))])
            return [body]
        return self.app(environ, start_response)


dispatcher = moto.server.DomainDispatcherApplication
moto.server.DomainDispatcherApplication = lambda *args, **kwargs: ExpectedBucketOwner(dispatcher(*args, **kwargs))

if __name__ == "__main__":
    sys.exit(moto.server.main())
