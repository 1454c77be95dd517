"""What rewardkit adds around a TRL trainer so that a run stays inside its folder and within its steps: TRL's
model card never written through a link, and a resumed stage whose checkpoint is its last step finished
without training past max_steps."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from rewardkit.callbacks.common import logger
from rewardkit.core import written
from rewardkit.core.fileio import refuse_link_below
from rewardkit.core.reading import read_run_json

if TYPE_CHECKING:
    from transformers import Trainer


def guard_model_card(trainer: Trainer, folder: Path) -> None:
    """TRL writes `<output_dir>/README.md` with a plain open() at every save: refuse it through a symlink, leave a
    README.md the run did not write alone (said once), and record the card as the run's (core/written.py)."""
    create = trainer.create_model_card
    warned: list[Path] = []

    def create_model_card(*args: Any, **kwargs: Any) -> Any:
        card = Path(str(trainer.args.output_dir)) / "README.md"
        refuse_link_below(folder, card)
        if not trainer.is_world_process_zero():
            return create(*args, **kwargs)
        if card.exists() and not all(found.ours for found in written.judged(folder, [card])):
            if not warned:
                warned.append(card)
                logger.warning("%s was not written by this run; TRL's model card is not written over it.", card)
            return None
        written.note(folder, card, "appended")  # any size while TRL writes it (a kill mid-write)
        result = create(*args, **kwargs)
        if card.is_file():
            written.note_file(folder, card)
        return result

    setattr(trainer, "create_model_card", create_model_card)  # noqa: B010  (an instance's method, replaced)


def steps_left(trainer: Trainer, checkpoint: Path) -> int:
    """Optimizer steps the stage has left after `checkpoint` (its max_steps, or the one the run computed)."""
    try:
        state = read_run_json(checkpoint / "trainer_state.json")
        done = int(state["global_step"])
        total = int(trainer.args.max_steps) if trainer.args.max_steps > 0 else int(state["max_steps"])
    except (ValueError, KeyError, TypeError):
        return 1  # unknown: let the Trainer decide
    return total - done


def finish_without_training(trainer: Trainer, checkpoint: Path) -> Any:
    """Load `checkpoint` (the stage's last step) into the trainer and end training as the Trainer would, without
    a step: `Trainer.train` entering another epoch would run one step past max_steps before it stops."""
    from transformers.trainer_callback import TrainerState
    from transformers.trainer_utils import TrainOutput

    trainer._load_from_checkpoint(str(checkpoint))
    state = TrainerState.load_from_json(str(checkpoint / "trainer_state.json"))
    state.is_local_process_zero = trainer.is_local_process_zero()
    state.is_world_process_zero = trainer.is_world_process_zero()
    trainer.state = state
    handler = trainer.callback_handler
    trainer.control = handler.on_train_begin(trainer.args, state, trainer.control)
    trainer.control = handler.on_train_end(trainer.args, state, trainer.control)
    losses = [e["loss"] for e in state.log_history if isinstance(e.get("loss"), (int, float))]
    loss = next((e["train_loss"] for e in reversed(state.log_history) if "train_loss" in e), None)
    return TrainOutput(state.global_step, loss if loss is not None else (losses[-1] if losses else 0.0), {})
