"""
moto's services as the local stack runs them: moto's own WSGI application, served by waitress
rather than moto_server's development server, with one check of S3's that moto leaves out.

- waitress keeps connections alive, as AWS's endpoints do. moto_server closes every connection
  after one answer, so each call paid for a new connection and a new thread on both sides.
- No line is logged per request: on the local stack that was a share of moto's CPU of its own.
- Three of moto's costs that grow with load are cut, with no change to what any call answers:
  finding the service of a request (a directory listing and hundreds of patterns a request, under
  one lock) is remembered per host; SQS reads the clock through datetime arithmetic for every
  message of a queue, several times a call, and now reads it directly; and SQS checked each message
  it received against the queue's retention by computing every queue attribute, counts of the whole
  queue among them, so a receive from a queue of a thousand messages cost 0.7 s of CPU.
- A request that names its bucket's expected owner (the x-amz-expected-bucket-owner header,
  ExpectedBucketOwner in the SDK) is refused with 403 AccessDenied unless that account owns the
  bucket. Every bucket on the local stack belongs to moto's one account.

Usage: moto-server.py -H <host> -p <port>
"""
import argparse
import os
import time

import waitress
from moto.core import DEFAULT_ACCOUNT_ID
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from moto.sqs import models as sqs_models

ACCESS_DENIED = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b"<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>"
)
# Each SQS long poll holds a thread for up to 20 s; drains, watchers and tests poll at once.
THREADS = 64
# S3's largest single PUT.
MAX_BODY_BYTES = 5 * 1024**3


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


class RememberedBackends(DomainDispatcherApplication):
    """Which backend serves a host never changes while the server runs."""

    def __init__(self, create_app):
        super().__init__(create_app)
        self.backends_by_host = {}

    def get_backend_for_host(self, host):
        if host not in self.backends_by_host:
            self.backends_by_host[host] = super().get_backend_for_host(host)
        return self.backends_by_host[host]


def unix_time(dt=None):
    return time.time() if dt is None else original_unix_time(dt)


def unix_time_millis(dt=None):
    return unix_time(dt) * 1000.0


def within_retention(self, queue_name, message):
    retention_seconds = self.get_queue(queue_name).message_retention_period
    return retention_seconds + message.sent_timestamp / 1000 > unix_time()


original_unix_time = sqs_models.unix_time
sqs_models.unix_time = unix_time
sqs_models.unix_time_millis = unix_time_millis
sqs_models.SQSBackend.is_message_valid_based_on_retention_period = within_retention


def main():
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=5000)
    args = parser.parse_args()
    # moto builds the addresses it hands out (queue URLs among them) from this.
    os.environ.setdefault("MOTO_PORT", str(args.port))
    waitress.serve(
        ExpectedBucketOwner(RememberedBackends(create_backend_app)),
        host=args.host,
        port=args.port,
        threads=THREADS,
        connection_limit=1000,
        # The SDK's agents keep idle connections for reuse; closing them early only makes new ones.
        channel_timeout=600,
        max_request_body_size=MAX_BODY_BYTES,
        ident=None,
    )


if __name__ == "__main__":
    main()
