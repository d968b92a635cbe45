from biofed import clidocs


def test_cli_reference_is_current():
    assert clidocs.DOC.read_text(encoding="utf-8") == clidocs.render(), "run: python -m biofed.clidocs"


def test_every_command_is_documented():
    text = clidocs.render()
    for name in ("biofed node init", "biofed registry add", "biofed aggregator harvest", "biofed verify", "biofed demo"):
        assert f"`{name}`" in text
