"""The message catalogue (names, fields, error codes) and the events a client job yields.

PROTOCOL.md is the prose version of this module.  Stdlib only.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from .images import ImageBuffer

# -- requests (client -> daemon) and the fields their content may carry ------------------------------------------
REQUEST_FIELDS: dict[str, frozenset[str]] = {
    "hello": frozenset(),
    "status": frozenset(),
    "list_styles": frozenset({"thumbnails"}),
    "stylize": frozenset({"options", "content", "style", "mask", "deliver", "tile_size", "mask_mode",
                          "keypoints_only", "overlay"}),
    "train": frozenset({"style", "name", "steps", "params", "photos"}),
    "chunk": frozenset({"image", "offset"}),   # one piece of a streamed image of header.job_id (1 buffer)
    "cancel": frozenset(),                 # the job to cancel is header.job_id
    "ping": frozenset(),
    "shutdown": frozenset({"cancel_jobs"}),
}
JOB_REQUESTS = ("stylize", "train")
MASK_MODES = ("blend", "alpha")        # stylize: how a mask is applied (PROTOCOL.md)

# -- replies (daemon -> client) -----------------------------------------------------------------------------------
HELLO_REPLY = "hello_reply"
STATUS_REPLY = "status_reply"
LIST_STYLES_REPLY = "list_styles_reply"
SHUTDOWN_REPLY = "shutdown_reply"
CANCEL_REPLY = "cancel_reply"
PONG = "pong"
ACCEPTED = "accepted"
PROGRESS = "progress"
TILE = "tile"
RESULT_CHUNK = "result_chunk"
RESULT = "result"
ERROR = "error"
CANCELLED = "cancelled"
TERMINAL = (RESULT, ERROR, CANCELLED)

DELIVER = ("result", "tiles")

# Images of at least STREAM_MIN bytes travel as separate "chunk" / "result_chunk" messages of STREAM_CHUNK bytes
# (description "buffer": "chunks"), so signing, sending and verifying overlap and no single frame is larger than
# one chunk: the daemon's ZMQ_MAXMSGSIZE is about one chunk (MAX_FRAME), which bounds what a peer makes it buffer.
STREAM_CHUNK = 4 << 20
STREAM_MIN = STREAM_CHUNK
FRAME_SLACK = 64 << 10
MAX_FRAME = STREAM_CHUNK + FRAME_SLACK      # ipc: the content JSON (<= 4 MiB) or one chunk, plus slack
# TCP (reachable by other local users): a connection that has not finished its handshake can make libzmq hold one
# frame of ZMQ_MAXMSGSIZE bytes, so TCP daemons take smaller frames; clients read the limit from hello_reply and
# stream anything larger in pieces that fit.
TCP_MAX_FRAME = (256 << 10) + FRAME_SLACK
CHUNKS = "chunks"

# -- error codes (content.code of an "error" reply) ---------------------------------------------------------------
ERROR_CODES: dict[str, str] = {
    "bad_header": "the header frame is not a valid JSON header",
    "bad_content": "the content frame is not a JSON object",
    "version": "the protocol major version differs",
    "replay": "a message id was received twice",
    "stale": "the message date is outside the accepted window",
    "unknown_type": "msg_type is not in the catalogue",
    "unknown_field": "the content has a field this msg_type does not define",
    "bad_request": "a field is missing or has the wrong type",
    "bad_options": "StylizeOptions rejected a value (message names it)",
    "bad_image": "an image description does not match its buffer",
    "too_large": "an image or the output exceeds the daemon's pixel limit, the content frame exceeds 4 MiB, or a "
                 "compressed buffer declares more bytes than the daemon takes in one frame",
    "bad_compression": "a compressed buffer's declaration or stream is wrong, or a codec is not offered",
    "extra_buffers": "buffer frames were sent that no image refers to",
    "duplicate_job": "header.job_id is already in use",
    "unknown_job": "cancel/chunk names a job the daemon does not know, that another connection submitted, or (for "
                   "chunk) that is not uploading",
    "bad_chunk": "a chunk does not continue its image's upload (offset or length wrong)",
    "upload_timeout": "a streamed upload stalled",
    "engine_unavailable": "the engine (or MT training) is not installed in this daemon",
    "unknown_style": "the MT style name is not installed",
    "engine_error": "the engine refused the input",
    "out_of_memory": "the job ran out of memory; try a smaller size or tile size",
    "shutting_down": "the daemon is stopping and takes no new jobs",
    "busy": "the daemon holds its maximum number of jobs, or the queued images would exceed its memory budget",
    "internal": "an unexpected failure inside the daemon (logged there)",
}


# -- events a Job yields -------------------------------------------------------------------------------------------
@dataclass
class Accepted:
    job_id: str
    position: int = 0                      # jobs ahead of this one (0 = runs now)


@dataclass
class ProgressEvent:
    fraction: float
    stage: str = ""
    preview: Optional[ImageBuffer] = None  # small u8 RGB sRGB image, when the job asked for previews
    losses: Optional[dict] = None
    position: Optional[int] = None         # jobs ahead, while the job waits in the queue


@dataclass
class TileEvent:
    x: int
    y: int
    image: ImageBuffer
    final: bool = False                    # True: a piece of the final result (deliver="tiles");
                                           # False: an engine tile shown early (RGB, before mask/alpha)


@dataclass
class ResultEvent:
    image: Optional[ImageBuffer]           # None when the job asked for deliver="tiles" (or for training jobs)
    info: dict = field(default_factory=dict)
    overlays: dict = field(default_factory=dict)   # name -> ImageBuffer (DST with overlay: "keypoints", "grid")


@dataclass
class ErrorEvent:
    code: str
    message: str


@dataclass
class CancelledEvent:
    reason: str = "requested"              # requested | client_gone | shutdown
    info: dict = field(default_factory=dict)


Event = Any  # one of the dataclasses above
