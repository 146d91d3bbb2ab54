"""What every widget shares: strict keyword arguments, declared actions, the Enum state, the preview mixin."""

from __future__ import annotations

from pathlib import Path

import pytest
import traitlets

import n4a_widgets.widgets as W
from n4a_widgets.widgets.base import STATES, WorkspaceWidget

ALL = [getattr(W, name) for name in W.__all__]
WRITERS = [W.MaintenancePanel, W.MergeStores, W.MigrationWizard]


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
def test_unknown_keyword_raises_type_error(cls: type[WorkspaceWidget], tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="fracton"):
        cls(tmp_path, fracton=0.2)
    with pytest.raises(TypeError, match="_workspace"):
        cls(tmp_path, _workspace=1)  # private names are not options either


def test_known_trait_keyword_is_accepted(small_ws: Path) -> None:
    w = W.MaintenancePanel(small_ws, autoload=False, fraction=0.25)
    assert w.fraction == 0.25


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
def test_state_is_a_closed_enum(cls: type[WorkspaceWidget]) -> None:
    trait = cls.class_traits()["state"]
    assert isinstance(trait, traitlets.Enum) and tuple(trait.values) == STATES  # type: ignore[arg-type]


def test_state_rejects_other_values(tmp_path: Path) -> None:
    w = W.StorageHealth(tmp_path / "missing")
    with pytest.raises(traitlets.TraitError):
        w.state = "finished"


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
def test_actions_are_declared_methods(cls: type[WorkspaceWidget]) -> None:
    names = cls.action_names()
    assert "cancel" in names
    for name in names:
        assert callable(getattr(cls, cls._actions[name]))
    # helpers that are not buttons are not reachable from the page
    assert "wait" not in names and "_run" not in names and "close" not in names


def test_unknown_action_and_malformed_messages_land_in_the_error_area(small_ws: Path) -> None:
    w = W.MaintenancePanel(small_ws, autoload=False)
    for content in ({"action": "rm -rf"}, {"action": "_run"}, {"action": "wait"}, "confirm", {"args": {}},
                    {"action": None}):
        w.error = {}
        w.state = "idle"
        w._on_message(w, content, [])
        assert w.state == "error" and w.error["type"] == "InvalidArgumentError", content
        assert w.error["title"] and w.error["message"]
    w.state, w.error = "idle", {}
    w._on_message(w, {"action": "preview_remove_bottom", "args": {"fracion": 0.3}}, [])
    assert w.error["type"] == "InvalidArgumentError" and "preview_remove_bottom" in w.error["message"]


def test_subclass_actions_are_collected_and_inherited(tmp_path: Path) -> None:
    from n4a_widgets.widgets.base import action

    class Probe(W.StorageHealth):
        calls: list[str] = []

        @action(aliases=("old_name",))
        def poke(self, value: int = 0) -> None:
            self.calls.append(f"poke {value}")

        def refresh(self) -> None:  # overriding without the decorator keeps the button
            self.calls.append("refresh")

    assert {"poke", "old_name", "refresh", "integrity_check", "cancel"} <= set(Probe.action_names())
    assert "poke" not in W.StorageHealth.action_names()
    ws = tmp_path / "ws"
    ws.mkdir()
    p = Probe(ws, autoload=False)
    p._on_message(p, {"action": "old_name", "args": {"value": 3}}, [])
    p._on_message(p, {"action": "refresh"}, [])
    assert Probe.calls == ["poke 3", "refresh"]


@pytest.mark.parametrize("cls", WRITERS, ids=lambda c: c.__name__)
def test_writers_share_the_preview_confirm_mixin(cls: type[WorkspaceWidget]) -> None:
    from n4a_widgets.widgets.preview import PreviewConfirm

    assert issubclass(cls, PreviewConfirm)
    assert {"confirm", "discard_preview"} <= set(cls.action_names())
    assert any(n.startswith("preview_") for n in cls.action_names())


def test_preview_is_the_pending_plan_and_calling_it_previews(small_ws: Path) -> None:
    w = W.MaintenancePanel(small_ws, autoload=False)
    assert w.preview == {} and not w.preview
    w.preview(0.5)  # the documented twin: same as preview_remove_bottom(0.5)
    assert w.wait(120) and w.state == "done", w.error
    assert w.preview["operation"] == "remove_bottom" and w.preview["inputs"]["fraction"] == 0.5
    import json

    json.dumps(w.preview)  # still plain JSON for the page
    w.discard_preview()
    assert w.preview == {}
