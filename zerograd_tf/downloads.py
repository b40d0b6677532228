"""Whether a TFDS data set's download host can be reached, asked in seconds.

Offline, TFDS retries a download for minutes and leaves a partial one
behind; `tfds_data.load_tfds` asks `needs_download` and `reachable` first.
"""

import logging
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
    """The `(host, port)` TFDS downloads data set `name` from (best known).

    Args:
        name: the TFDS data set's name.

    Returns:
        Its entry of `HOSTS`, else `DEFAULT_HOST`.
    """
    return HOSTS.get(name, DEFAULT_HOST)


def reachable(name, timeout=2.0):
    """Whether the download host of TFDS data set `name` answers, within `timeout` s.

    One TCP connection (to the proxy, where one is configured), name
    resolution included, so an offline machine is told in seconds rather
    than after TFDS' minutes of retries.

    Args:
        name: the TFDS data set's name (its host from `HOSTS`, else TFDS'
            bucket).
        timeout: the seconds to wait for the connection, name resolution
            included. Defaults to 2.0.

    Returns:
        A bool.

    Examples:
        Which host is asked (the answer depends on the network, so it is not
        shown here; without internet it is False within `timeout`):

        >>> download_host("cifar10"), download_host("a_new_dataset") == DEFAULT_HOST
        (('www.cs.toronto.edu', 443), True)
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


def needs_download(name, data_dir=None):
    """Whether loading TFDS data set `name` would download it.

    False when it is prepared in `data_dir` already, when TFDS does not know
    it (TFDS then reports that itself), and when TFDS' downloads are
    replaced by `tfds.testing.mock_data` (nothing goes over the network).

    Args:
        name: the TFDS data set's name.
        data_dir: the TFDS data directory. Defaults to `None` (TFDS's
            default, `~/tensorflow_datasets`).

    Returns:
        A bool.

    Examples:
        >>> import tempfile
        >>> import tensorflow_datasets as tfds
        >>> needs_download("mnist", tempfile.mkdtemp())
        True
        >>> with tfds.testing.mock_data(num_examples=2):
        ...     needs_download("mnist", tempfile.mkdtemp())
        False
    """
    import tensorflow_datasets as tfds

    download = tfds.core.DatasetBuilder.download_and_prepare
    if not getattr(download, "__module__", "").startswith("tensorflow_datasets.core"):
        return False
    absl = logging.getLogger("absl")  # "Variant folder ... has no dataset_info.json"
    level = absl.level
    absl.setLevel(logging.ERROR)
    try:
        return not tfds.builder(name, data_dir=data_dir).is_prepared()
    except Exception:  # an unknown name: TFDS says so in `load_tfds`
        return False
    finally:
        absl.setLevel(level)
