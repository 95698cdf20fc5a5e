"""`backdrop review`: a page on 127.0.0.1 for choosing which variants of each upload to publish.

`service` reads the stack (recent jobs, images) and acts through the library (`Publisher.choose`, and a copy of
the photo onto itself to try again); `server` puts that behind a local HTTP server, where the per-run token in
the printed address is traded once for a session cookie.
"""

from backdrop_kit.review.server import ReviewServer, open_review
from backdrop_kit.review.service import ReviewError, ReviewService

__all__ = ["ReviewError", "ReviewServer", "ReviewService", "open_review"]
