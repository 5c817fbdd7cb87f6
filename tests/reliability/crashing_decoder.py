"""Stands in for the decoder child in a test: dies of SIGSEGV, as PyAV did on 8-channel files."""

import os
import signal

if __name__ == "__main__":
    os.kill(os.getpid(), signal.SIGSEGV)
