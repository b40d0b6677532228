"""Whether a TFDS data set's download host can be reached, asked in seconds.

Offline, TFDS retries a download for minutes and leaves a partial one
behind; `datasets.load_tfds` asks `reachable` first.
"""

import socket
import threading
import urllib.parse
import urllib.request

# Where TFDS downloads each data set from (host, port).
HOSTS = {"mnist": ("storage.googleapis.com", 443),
         "fashion_mnist": ("fashion-mnist.s3-website.eu-central-1.amazonaws.com", 80),
         "cifar10": ("www.cs.toronto.edu", 443), "cifar100": ("www.cs.toronto.edu", 443),
         "svhn_cropped": ("ufldl.stanford.edu", 80)}
# Any other data set: TFDS' own bucket, where it first looks for prepared data.
DEFAULT_HOST = ("storage.googleapis.com", 443)


def download_host(name):
    """The `(host, port)` TFDS downloads data set `name` from (best known)."""
    return HOSTS.get(name, DEFAULT_HOST)


def reachable(name, timeout=2.0):
    """Whether the download host of TFDS data set `name` answers, within `timeout` s.

    One TCP connection (to the proxy, where one is configured), name
    resolution included, so an offline machine is told in seconds rather
    than after TFDS' minutes of retries.
    """
    host, port = download_host(name)
    proxy = urllib.request.getproxies().get("https" if port == 443 else "http")
    if proxy and not urllib.request.proxy_bypass(host):
        parsed = urllib.parse.urlsplit(proxy if "://" in proxy else "http://" + proxy)
        host, port = parsed.hostname, parsed.port or 80
    answered = []

    def connect():
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            answered.append(True)
        except OSError:
            pass

    thread = threading.Thread(target=connect, daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(answered)
