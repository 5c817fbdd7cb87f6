"""What the loaded model can transcribe: its default language, and whether it can detect."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ModelLanguages:
    default: str = "en"
    multilingual: bool = False
    supported: frozenset[str] = field(default_factory=lambda: frozenset({"en"}))

    @staticmethod
    def base(code: str) -> str:
        """``en-US`` / ``pt_BR`` -> ``en`` / ``pt``."""
        return code.replace("_", "-").split("-")[0].lower()

    def supports(self, code: str) -> bool:
        return self.base(code) in self.supported

    def refusal(self, code: str) -> str:
        """Why ``code`` cannot be served (for a 400)."""
        if not self.multilingual:
            return (f"language {code!r} needs a multilingual model (e.g. --model base); the "
                    f"loaded model is English-only")
        return f"language {code!r} is not one Whisper knows"
