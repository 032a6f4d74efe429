"""Commands behave alike: every command that writes into a folder takes --output-dir (old spellings stay
as aliases)."""
import importlib

import pytest

FOLDER_COMMANDS = [("eval_pipeline.evaluate", [], "--out-dir"), ("eval_pipeline.plot", [], "--out-dir"),
                   ("eval_pipeline.analyze", ["trends"], "--out-dir"), ("data_pipeline.export", [], "--out-dir"),
                   ("data_pipeline.variants", [], "--out-dir"), ("simulation.composition", [], "--out-dir"),
                   ("simulation.sentiment_eval", [], "--out-dir"), ("simulation.sentiment_train", [], "--out-dir"),
                   ("simulation.world", [], "--out"), ("simulation.family", [], "--out")]


@pytest.mark.parametrize("module, sub, old", FOLDER_COMMANDS)
def test_output_dir_everywhere_with_the_old_spelling_as_alias(capsys, module, sub, old):
    main = importlib.import_module(module).main
    with pytest.raises(SystemExit) as e:
        main([*sub, "--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    assert "--output-dir" in text and old in text
