"""The one record every stage shares: a rule produces it, flake8 prints it, the fixer rewrites it."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Finding:
    code: str  # "TCS001"
    path: str  # file the line is in
    line: int  # 1-based
    col: int  # 0-based, as flake8 reports it
    end_line: int
    end_col: int
    summary: str  # what is wrong, without the code: "in-place write into KVCache._current_idx, a tensor ..."
    why: str  # what torch.compile does with it, in a sentence
    fix: str  # how to fix it, in words
    root: str = ""  # qualified name of the compiled root that reaches the line
    chain: tuple[str, ...] = ()  # root -> ... -> function holding the line
    function: str = ""  # qualified name of the function holding the line
    # Machine-readable hints for the fixer: rule-specific keys; "fix" holds the typed payload its fix
    # needs (a flake8_compile_safe.fixdata record), or None.
    data: dict = field(default_factory=dict, compare=False, hash=False)
    def_line: int = 0  # line of the `def` of `function` (0: unknown)
    # `function` is a compiled root (nn.Module.forward, a torch.compile target) that no other compiled code
    # calls: the entry point itself, not a submodule's forward
    in_root: bool = False
    runs_modules: bool = False  # `function` calls nn.Modules (model code, not a helper: never run it eagerly)
    consequence: str = ""  # what dynamo does, in a few words: "a graph break"

    @property
    def reached_from(self) -> str:
        return " -> ".join(self.chain) if self.chain else self.root

    def message(self, explain: bool = False) -> str:
        """The flake8 text: one line, code first (what, what dynamo does, the compiled root).

        ``explain`` adds the call chain, why and the fix (``--compile-safe-explain``).
        """
        text = f"{self.code} {self.summary}"
        if self.consequence:
            text += f": {self.consequence}"
        if self.root:
            text += f" [{self.root}]"
        if explain:
            if self.reached_from and self.reached_from != self.root:
                text += f"; reached from {self.reached_from}"
            text += f"; {self.why}; fix: {self.fix}"
        return text

    def as_flake8(self, explain: bool = False) -> tuple[int, int, str]:
        return self.line, self.col, self.message(explain)
