"""What a Vault answer that holds no secret means: a missing key, or settings that point at the wrong place.

Vault answers 404 both for a key that is not there and for a KV v1 mount read with v2 paths, and 403
both for a path the token's policy denies and (to a token without rights everywhere) for a mount that
does not exist. Only the first reading is "not found, ask the next backend"; the others are a
misconfiguration the user must hear about (issue 14). `sys/internal/ui/mounts/<path>` (what the `bao kv`
and `vault kv` commands ask to find a mount's KV version) tells them apart: it answers any token that
may use something under the mount, with the mount's path, type and options.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import hvac


@dataclass(frozen=True, slots=True)
class MountInfo:
    """One secrets engine mount as Vault describes it; `kv_version` is None for a non-KV engine."""

    path: str
    engine: str
    kv_version: int | None


@dataclass(frozen=True, slots=True)
class Misconfiguration:
    """Why reading `path` under `mount` found nothing although the key may well exist."""

    kind: str  # "no mount" | "kv version" | "permission" (one warning per kind and mount, see VaultBackend)
    mount: str
    path: str
    problem: str
    fix: str


def mount_info(client: "hvac.Client", mount: str, path: str) -> MountInfo | None:
    """The mount holding `mount/path`, or None when Vault will not say (no such mount, or no right under it)."""
    from hvac.exceptions import VaultError

    try:
        answer: Any = client.adapter.get(f"/v1/sys/internal/ui/mounts/{mount.strip('/')}/{path}")
    except VaultError:  # 403 "preflight capability check"; an older server without this endpoint: no diagnosis
        return None
    data = (answer or {}).get("data") or {}
    engine = str(data.get("type") or "")
    version = ((data.get("options") or {}).get("version") or "1") if engine in ("kv", "generic") else None
    return MountInfo(path=str(data.get("path") or "").strip("/"), engine=engine,
                     kv_version=None if version is None else int(version))


def listed_mounts(client: "hvac.Client") -> list[str] | None:
    """The KV engines' mount points, if this token may list them (`sys/mounts` needs a broad policy)."""
    from hvac.exceptions import VaultError

    try:
        answer: Any = client.sys.list_mounted_secrets_engines()
    except VaultError:
        return None
    mounts = answer.get("data", answer) if isinstance(answer, dict) else {}
    return sorted(name.strip("/") for name, value in mounts.items()
                  if isinstance(value, dict) and value.get("type") in ("kv", "generic"))


def diagnose(client: "hvac.Client", *, mount: str, path: str, setting: str, kv_version: int, refused: bool,
             no_route: bool, info: MountInfo | None) -> Misconfiguration | None:
    """Why `mount/path` answered 404 (`refused` False) or 403 (`refused` True); None for a plain missing key.

    `no_route` is Vault's own "no handler for route" (the mount certainly does not exist); `info` is
    `mount_info` for this mount, looked up by the caller (which keeps it); `setting` is the `[vault]`
    option that chose `path` (variables_path, ...).
    """
    name, where = mount.strip("/"), f"{mount.strip('/')}/{path}"
    if info is None and not no_route and not refused:
        return None  # the token may read there, so the mount exists: the key is missing
    if info is None:
        known = listed_mounts(client)
        if known is not None and name in known and not no_route:
            return _denied(mount, path, where, setting, kv_version)  # exists; the token may use nothing under it
        if known is not None:
            return Misconfiguration("no mount", mount, where, "there is no secrets engine mounted there",
                                    f"set [vault] mount_point to one of: {', '.join(known)}")
        return Misconfiguration("no mount", mount, where, "no secrets engine is mounted there that this token may use",
                                "check [vault] mount_point (`bao secrets list`) and the token's policy")
    if info.path != name:
        return Misconfiguration("no mount", mount, where, f"that is a path inside the mount {info.path!r}",
                                f"set [vault] mount_point to {info.path!r} and put the rest in [vault] {setting}")
    if info.kv_version is None:
        return Misconfiguration("kv version", mount, where, f"the mount is a {info.engine!r} engine, not KV",
                                "set [vault] mount_point to a KV mount")
    if info.kv_version != kv_version:
        return Misconfiguration("kv version", mount, where,
                                f"the mount is KV version {info.kv_version} but [vault] kv_engine_version is "
                                f"{kv_version}", f"set NBFLOW__VAULT__KV_ENGINE_VERSION={info.kv_version}")
    return _denied(mount, path, where, setting, kv_version) if refused else None


def _denied(mount: str, path: str, where: str, setting: str, kv_version: int) -> Misconfiguration:
    read_path = f"{mount.strip('/')}/data/{path}" if kv_version == 2 else where
    return Misconfiguration("permission", mount, where,
                            f"permission denied: the token's policy does not allow read on {read_path}",
                            f"grant `read` on it to the token's policy, or fix [vault] {setting}")
