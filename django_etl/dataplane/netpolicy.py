"""Where connectors may connect: a host is resolved once, every address checked, the connection pinned to it.

The rule, in full (docs/security.md, "Network and files"):
- a connector's host (database host, API URL, S3 endpoint) is resolved with :func:`resolve`; **every** address it
  resolves to must pass, and the connection then goes to the first one, never to a second resolution (a name
  that answers a public address when checked and 127.0.0.1 when used — DNS rebinding — gains nothing);
- refused by default: loopback, private, link-local (169.254/16 with the cloud metadata service, fe80::/10),
  shared (100.64/10), multicast, reserved, unspecified and every other non-global address, this machine's own
  addresses, and the same behind IPv4-mapped, 6to4, Teredo and NAT64 IPv6 forms;
- opened by ``ETL_NETWORK_ALLOW`` (the operator's, for every organization) and by an organization's network
  allowance (set by a superuser, carried in :class:`Allowance`): networks or addresses, optionally one port;
- never opened: the platform's own servers (:func:`platform_servers`: Django's database, Airflow's metadata
  database, the staging store, ``ETL_PLATFORM_SERVERS``), by host and port, so no other database on those
  servers either, whatever an allowance says.

No Django import: the adapters call it inside bare task processes; Django's settings are read when configured.
"""

from __future__ import annotations

import functools
import ipaddress
import itertools
import os
import re
import socket
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from django_etl import conf
from django_etl.errors import ConfigurationError, ConnectorError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

ALLOW_SETTING = "ETL_NETWORK_ALLOW"
# Where IPv6 forms embed an IPv4 address that is then the one reached.
NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
SHARED = ipaddress.ip_network("100.64.0.0/10")
LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))
# IANA's special-purpose registries, written out: Python's own tables (is_private, is_global) changed between
# patch releases — 3.12.1 calls 192.0.0.192 (Oracle Cloud's metadata service) global. Whatever the interpreter
# says, these are never an ordinary public address.
SPECIAL_PURPOSE = tuple(
    ipaddress.ip_network(net)
    for net in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.88.99.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",
        "240.0.0.0/4",
        "::/127",
        "::ffff:0:0/96",
        "::ffff:0:0:0/96",
        "64:ff9b::/96",
        "64:ff9b:1::/48",
        "100::/64",
        "2001::/23",
        "2001:db8::/32",
        "2002::/16",
        "3fff::/20",
        "5f00::/16",
        "fc00::/7",
        "fe80::/10",
        "fec0::/10",
        "ff00::/8",
    )
)
DEFAULT_PORTS = {"http": 80, "https": 443, "postgres": 5432, "postgresql": 5432, "mysql": 3306, "redis": 6379}
# A host name (RFC 1123 labels, underscores tolerated) or an IP literal: never a socket path, list or URL.
HOST_NAME = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,62})(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,62}))*\.?$"
)


class NetworkRefused(ConnectorError):
    """A connector's target is outside what the network policy allows (never retryable)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=False)


def resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to, in the resolver's order.

    The one place names are looked up: the test suite replaces this function with a table of names, so no
    lookup (and no connection) ever leaves loopback there.
    """
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


# ---------------------------------------------------------------- addresses


def parse_address(text: str) -> IPAddress:
    return ipaddress.ip_address(text.split("%", 1)[0])  # a zone index (fe80::1%eth0) names no other address


def embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 form reaches (mapped, 6to4, Teredo client, NAT64), or None."""
    if ip.version != 6:
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if any(ip in network for network in NAT64):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def special_use(ip: IPAddress) -> str | None:
    """Why ``ip`` is not an ordinary public address ("loopback", "private"…), or None when it is one."""
    inner = embedded_ipv4(ip)
    if inner is not None:
        reason = special_use(inner)
        if reason is not None:
            return f"{reason} (as {inner})"
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if ip.is_multicast:
        return "multicast"
    if ip.version == 4 and ip in SHARED:
        return "shared (carrier-grade NAT)"
    if ip.is_reserved:
        return "reserved"
    if ip.is_private:
        return "private"
    if not ip.is_global or any(ip in network for network in SPECIAL_PURPOSE if network.version == ip.version):
        return "special-purpose"
    if ip in this_machine():
        return "this machine's"
    return None


@functools.lru_cache(maxsize=1)
def this_machine() -> frozenset[IPAddress]:
    """This machine's own interface addresses (Linux: from /proc; elsewhere none beyond loopback)."""
    found: set[IPAddress] = set()
    try:
        lines = Path("/proc/net/fib_trie").read_text().splitlines()
    except OSError:
        lines = []
    for previous, line in itertools.pairwise(lines):
        if line.strip() == "/32 host LOCAL":
            try:
                found.add(ipaddress.ip_address(previous.strip().removeprefix("|-- ").strip()))
            except ValueError:
                continue
    try:
        for line in Path("/proc/net/if_inet6").read_text().splitlines():
            digits = line.split()[0]
            found.add(ipaddress.IPv6Address(int(digits, 16)))
    except (OSError, ValueError, IndexError):
        pass
    return frozenset(found)


def is_local(ip: IPAddress) -> bool:
    """Whether a connection to ``ip`` stays on this machine (loopback, unspecified, an own address)."""
    inner = embedded_ipv4(ip)
    if inner is not None:
        ip = inner
    return ip.is_loopback or ip.is_unspecified or ip in this_machine()


# ---------------------------------------------------------------- allowances


@dataclass(frozen=True)
class AllowEntry:
    """One opening: a network (or one address) and, optionally, the only port it opens."""

    network: IPNetwork
    port: int | None = None

    def covers(self, ip: IPAddress, port: int) -> bool:
        if self.port is not None and port != self.port:
            return False
        inner = embedded_ipv4(ip)
        return ip in self.network or (inner is not None and inner in self.network)

    def __str__(self) -> str:
        net = str(self.network) if self.network.num_addresses > 1 else str(self.network.network_address)
        if self.port is None:
            return net
        return f"[{net}]:{self.port}" if self.network.version == 6 else f"{net}:{self.port}"


def parse_allow_entry(text: str) -> AllowEntry:
    """``10.0.0.0/8``, ``127.0.0.1:9000``, ``[::1]:9000``, ``fd00::/8``; ValueError naming the entry."""
    raw = text.strip()
    port: int | None = None
    address = raw
    if raw.startswith("["):
        inside, _, rest = raw[1:].partition("]")
        address = inside
        if rest:
            if not rest.startswith(":"):
                raise ValueError(f"{text!r} is not a network, an address or address:port")
            port = _port(rest[1:], text)
    elif raw.count(":") == 1:  # IPv4 with a port (IPv6 without brackets has several colons)
        address, _, port_text = raw.partition(":")
        port = _port(port_text, text)
    try:
        network = ipaddress.ip_network(address, strict=False)
    except ValueError:
        raise ValueError(
            f"{text!r} is not a network, an address or address:port (names are not accepted: they would be "
            "resolved again)"
        ) from None
    return AllowEntry(network, port)


def _port(text: str, entry: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise ValueError(f"{entry!r}: the port must be a number from 1 to 65535")
    return int(text)


def parse_allow_list(entries: Iterable[str], where: str) -> tuple[AllowEntry, ...]:
    """Every entry parsed; a ConfigurationError naming ``where`` and the entry for the first bad one."""
    parsed = []
    for entry in entries:
        if not str(entry).strip():
            continue
        try:
            parsed.append(parse_allow_entry(str(entry)))
        except ValueError as exc:
            raise ConfigurationError(f"{where}: {exc}") from None
    return tuple(parsed)


@dataclass(frozen=True)
class Allowance:
    """What one organization's policy (set by a superuser) grants its connectors beyond the platform's.

    Built by Django's side (``Connector.runtime_settings()``, ``connectors.validation``) and handed to the
    adapters in the runtime settings as a plain dict, so task processes need no query of their own.
    ``file_roots`` None means the platform's ``ETL_FILE_ROOTS``; ``foreign_roots`` are the folders assigned to
    other organizations, never reachable from this one.
    """

    networks: tuple[str, ...] = ()
    file_roots: tuple[str, ...] | None = None
    foreign_roots: tuple[str, ...] = ()
    organization: str | None = None

    @classmethod
    def from_runtime(cls, data: Any) -> Allowance:
        if isinstance(data, Allowance):
            return data
        if not isinstance(data, dict):
            return cls()
        roots = data.get("file_roots")
        return cls(
            networks=tuple(map(str, data.get("networks") or ())),
            file_roots=tuple(map(str, roots)) if roots else None,
            foreign_roots=tuple(map(str, data.get("foreign_roots") or ())),
            organization=str(data["organization"]) if data.get("organization") else None,
        )

    def as_runtime(self) -> dict[str, Any]:
        return {
            "networks": list(self.networks),
            "file_roots": list(self.file_roots) if self.file_roots is not None else None,
            "foreign_roots": list(self.foreign_roots),
            "organization": self.organization,
        }

    def network(self) -> NetworkPolicy:
        return network_policy(self.networks)


# ---------------------------------------------------------------- platform servers


@dataclass(frozen=True)
class PlatformServer:
    """A server the platform itself uses; no connector may reach its port, on any of its addresses."""

    what: str
    host: str
    port: int
    addresses: frozenset[IPAddress] = field(default_factory=frozenset)

    @property
    def local(self) -> bool:
        return any(is_local(ip) for ip in self.addresses)

    def matches(self, ip: IPAddress, port: int) -> bool:
        if port != self.port:
            return False
        inner = embedded_ipv4(ip)
        candidates = {ip} | ({inner} if inner is not None else set())
        if candidates & self.addresses:
            return True
        # A server on this machine answers on every local address (127.0.0.2, 0.0.0.0, the LAN address…).
        return self.local and any(is_local(candidate) for candidate in candidates)


def django_databases() -> list[dict[str, Any]] | None:
    """Django's DATABASES once its settings are configured (read, never imported here), else None."""
    django_conf = sys.modules.get("django.conf")
    if django_conf is None:
        return None
    try:
        if not (django_conf.settings.configured or os.environ.get("DJANGO_SETTINGS_MODULE")):
            return None
        return [dict(db) for db in django_conf.settings.DATABASES.values()]
    except Exception:  # settings that cannot load are reported by Django itself
        return None


def _url_server(what: str, url: str) -> tuple[str, str, int] | None:
    """(what, host, port) of a database/service URL with a network host, else None (files, sockets)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.split("+", 1)[0].lower()
    if scheme in ("", "sqlite", "file") or (scheme not in DEFAULT_PORTS and port is None):
        return None
    host = parts.hostname or "localhost"  # no host: the local socket, the same server as localhost's
    return what, host, port or DEFAULT_PORTS.get(scheme, 0)


def _declared_servers() -> list[tuple[str, str, int]]:
    found: list[tuple[str, str, int]] = []
    databases = django_databases()
    if databases is None:
        url = os.environ.get("DATABASE_URL", "")
        server = _url_server("Django's database server", url) if url else None
        found += [server] if server else []
    else:
        for db in databases:
            if "sqlite" in str(db.get("ENGINE", "")):
                continue
            host = str(db.get("HOST") or "localhost")
            if host.startswith("/"):
                host = "localhost"  # a socket folder: the server on this machine
            port = int(db.get("PORT") or (3306 if "mysql" in str(db.get("ENGINE", "")) else 5432))
            found.append(("Django's database server", host, port))
    for variable, what in (
        ("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "Airflow's metadata database server"),
        ("AIRFLOW__CELERY__BROKER_URL", "Airflow's Celery broker"),
        ("AIRFLOW__CELERY__RESULT_BACKEND", "Airflow's Celery result backend"),
        ("AIRFLOW__CORE__EXECUTION_API_SERVER_URL", "Airflow's API server"),
    ):
        server = _url_server(what, os.environ.get(variable, ""))
        found += [server] if server else []
    for setting, what in (
        # write-back's own address of Django's database (a pooler): the same database
        ("ETL_RECORDER_DATABASE_URL", "write-back's database server (ETL_RECORDER_DATABASE_URL)"),
        # the REST API Django (Run now, the catch-up) signs in to with the service account
        ("ETL_AIRFLOW_API_URL", "Airflow's API server (ETL_AIRFLOW_API_URL)"),
    ):
        url = str(conf.value(setting) or "")
        server = _url_server(what, url) if url else None
        found += [server] if server else []
    endpoint = str(conf.value("ETL_STAGING_S3_ENDPOINT_URL") or "")
    if endpoint:
        server = _url_server("the staging store", endpoint if "://" in endpoint else f"https://{endpoint}")
        found += [server] if server else []
    for entry in conf.value("ETL_PLATFORM_SERVERS") or ():
        host, port = split_host_port(str(entry), "ETL_PLATFORM_SERVERS")
        found.append(("a platform server (ETL_PLATFORM_SERVERS)", host, port))
    return found


def split_host_port(text: str, where: str) -> tuple[str, int]:
    """``host:port`` or ``[v6]:port``; ConfigurationError naming ``where`` otherwise."""
    raw = text.strip()
    if raw.startswith("["):
        host, _, rest = raw[1:].partition("]")
        port_text = rest.removeprefix(":")
    else:
        host, _, port_text = raw.rpartition(":")
    if not host or not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise ConfigurationError(f"{where}: {text!r} is not host:port")
    return host, int(port_text)


def platform_servers() -> tuple[PlatformServer, ...]:
    """The platform's own servers, each with the addresses its host resolves to (looked up each time)."""
    servers = []
    for what, host, port in _declared_servers():
        try:
            addresses = frozenset(parse_address(a) for a in resolve(host, port))
        except (OSError, ValueError):
            addresses = frozenset()
        if host == "localhost" and not addresses:
            addresses = frozenset(ipaddress.ip_address(a) for a in ("127.0.0.1", "::1"))
        servers.append(PlatformServer(what, host, port, addresses))
    return tuple(servers)


# ---------------------------------------------------------------- the policy


@dataclass(frozen=True)
class NetworkPolicy:
    """The openings in force for one connector (the platform's and its organization's) and the closed servers."""

    allow: tuple[AllowEntry, ...] = ()
    platform: tuple[PlatformServer, ...] = ()

    def refusal(self, ip: IPAddress, port: int) -> str | None:
        """Why a connection to ``ip``:``port`` is refused ("10.0.0.1:5432 is a private address; …"), or None."""
        found = self._refusal(ip, port)
        return None if found is None else f"{_show(ip, port)} is {found}"

    def _refusal(self, ip: IPAddress, port: int) -> str | None:
        for server in self.platform:
            if server.matches(ip, port):
                return f"{server.what}, which connectors may never reach"
        if any(entry.covers(ip, port) for entry in self.allow):
            return None
        reason = special_use(ip)
        if reason is None:
            return None
        return (
            f"a {reason} address; connectors reach only public addresses unless {ALLOW_SETTING} "
            "or the organization's network policy (set by a superuser) allows it"
        )

    def check(self, host: str, port: int, *, key: str = "host", unresolved_ok: bool = False) -> str | None:
        """The address a connection to ``host``:``port`` must use, after checking every address of the name.

        Raises NetworkRefused naming ``key``. ``unresolved_ok`` (save time): a name that does not resolve now
        is accepted (None), since the check at connect time decides; at connect time it is refused.
        """
        check_host_syntax(host, key)
        numeric = legacy_ipv4(host)
        try:
            addresses = [numeric] if numeric else [parse_address(a) for a in resolve(host, port)]
        except (OSError, UnicodeError, ValueError):
            addresses = []
        if not addresses:
            if unresolved_ok:
                return None
            raise NetworkRefused(f"{key} {host!r} does not resolve")
        for ip in addresses:
            reason = self._refusal(ip, port)
            if reason is not None:
                if _is_literal(host):
                    raise NetworkRefused(f"{key}: {_show(ip, port)} is {reason}")
                raise NetworkRefused(f"{key}: {host!r} resolves to {_show(ip, port)}, {reason}")
        return str(addresses[0])

    def pin(self, host: str, port: int, *, key: str = "host") -> str:
        """The checked address to connect to (connect time: a name that does not resolve is refused)."""
        address = self.check(host, port, key=key)
        assert address is not None
        return address


def network_policy(extra: Iterable[str] = ()) -> NetworkPolicy:
    """The policy in force: ``ETL_NETWORK_ALLOW`` plus ``extra`` (an organization's allowance)."""
    allow = parse_allow_list(conf.value(ALLOW_SETTING) or (), ALLOW_SETTING)
    allow += parse_allow_list(extra, "the organization's network policy")
    return NetworkPolicy(allow=allow, platform=platform_servers())


def refusal_at_save(allowance: Allowance, host: str, port: int, key: str) -> str | None:
    """Why a connector's target ``host``:``port`` (its config key ``key``) is refused when it is saved, or None.

    The message leaves the key out: the validation report names it. A name that does not resolve now passes
    (the check when connecting decides).
    """
    try:
        allowance.network().check(host, port, key=key, unresolved_ok=True)
    except (NetworkRefused, ConfigurationError) as exc:
        return str(exc).removeprefix(f"{key}: ").removeprefix(f"{key} ")
    return None


def check_host_syntax(host: str, key: str = "host") -> None:
    """A host is one name or one IP literal: no socket path (``/``), no list (``,``), no URL, no spaces."""
    if not isinstance(host, str) or not host:
        raise NetworkRefused(f"{key}: a host name or IP address is required")
    if _is_literal(host):
        return
    if not HOST_NAME.match(host):
        raise NetworkRefused(
            f"{key} {host!r} is not a host name or an IP address (socket paths, lists and URLs are refused)"
        )


def legacy_ipv4(host: str) -> ipaddress.IPv4Address | None:
    """The address of a numeric host libc reads as IPv4 (``0``, ``2130706433``, ``0x7f.1``, ``0177.0.0.1``).

    Such a host is an address whatever the resolver says: it is checked as one, at save time too.
    """
    if not re.fullmatch(r"(?:0[xX][0-9a-fA-F]+|[0-9]+)(?:\.(?:0[xX][0-9a-fA-F]+|[0-9]+)){0,3}\.?", host):
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host.rstrip(".")))
    except (OSError, ValueError):
        return None


def _is_literal(host: str) -> bool:
    try:
        parse_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def _show(ip: IPAddress, port: int) -> str:
    return f"[{ip}]:{port}" if ip.version == 6 else f"{ip}:{port}"


def url_target(url: str) -> tuple[str, int]:
    """(host, port) of an http(s) URL (the port its scheme implies when none is written)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    return host, parts.port or DEFAULT_PORTS.get(parts.scheme.lower(), 443)
