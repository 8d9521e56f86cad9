"""The base of every typed option section (textgauge.options): a dataclass built from a
config mapping that refuses unknown keys (naming the closest known one), options that no
longer exist (saying what to do instead) and credentials written into the config."""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Mapping
from typing import Any, ClassVar

from textgauge.errors import ConfigError
from textgauge.secrets import (  # one definition of a key-like option (textgauge.secrets)
    SECRET_KEY,
    find_secret_options,
    secret_option_message,
)


def secret_key_message(where: str, key: str) -> str:
    """The error for a credential written into the config."""
    return secret_option_message(f"{where}.{key}")

#: options whose value is a free-form mapping of further option names (checked for keys too)
FREE_FORM = ("extra_body", "engine_args", "encoder")


class Options:
    """Mixin: build a dataclass from a config mapping, refusing unknown keys."""

    #: field name -> dataclass of that nested object
    NESTED: ClassVar[dict[str, type]] = {}
    #: how this section is called in messages ("validation", "models.<name>.limits" ...)
    WHERE: ClassVar[str] = "config"
    #: options that no longer exist -> what to do instead (the end of the error sentence)
    REMOVED: ClassVar[dict[str, str]] = {}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None, where: str | None = None) -> Any:
        where = where or cls.WHERE
        d = dict(d or {})
        names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
        unknown = [k for k in d if k not in names]
        for key in unknown:
            if SECRET_KEY.search(key):
                raise ConfigError(secret_key_message(where, key))
            if key in cls.REMOVED:
                raise ConfigError(f"{where}.{key} {cls.REMOVED[key]}")
        if unknown:
            hints = []
            for key in unknown:
                close = difflib.get_close_matches(key, names, n=1)
                hints.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
            raise ConfigError(f"{where}: unknown option(s) {', '.join(hints)}. Known options: "
                              f"{', '.join(names)} (see config/README.md).")
        for key in FREE_FORM:  # passed on to an SDK or engine as they are: no key in them
            if isinstance(d.get(key), Mapping):
                secret = find_secret_options(d[key], None, where=f"{where}.{key}")
                if secret:
                    raise ConfigError(secret_option_message(secret[0]))
        for key, sub in cls.NESTED.items():
            if key in d and d[key] is not None and not dataclasses.is_dataclass(d[key]):
                d[key] = sub.from_dict(d[key], f"{where}.{key}")
        try:
            return cls(**d)
        except TypeError as exc:  # a required option is missing
            raise ConfigError(f"{where}: {exc}".replace("__init__() ", "")) from exc

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]


__all__ = ["FREE_FORM", "Options", "secret_key_message"]
