"""A real RTSP server for the tests (GStreamer's gst-rtsp-server), serving one WAV file as
16 kHz mono L16 at real-time pace. Runs under the system Python, which has PyGObject:

    /usr/bin/python3 tests/e2e/rtsp_server.py PORT FILE.wav
"""

import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def main() -> None:
    port, path = sys.argv[1], sys.argv[2]
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(port)
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(
        f"( filesrc location={path} ! wavparse ! audioconvert ! audioresample ! "
        "audio/x-raw,rate=16000,channels=1 ! rtpL16pay name=pay0 pt=96 )"
    )
    factory.set_shared(True)
    server.get_mount_points().add_factory("/speech", factory)
    server.attach(None)
    print("ready", flush=True)
    GLib.MainLoop().run()


if __name__ == "__main__":
    main()
