"""The training-curve panels read TokenPPO's progress.csv columns (SB3's tags) and older runs' names."""

from textgym.plotting import PANELS, panel_values, plot_training_curves


def test_panels_read_sb3_tags_and_the_entropy_sign(tmp_path):
    csv = tmp_path / "progress.csv"
    csv.write_text("time/total_timesteps,rollout/ep_rew_mean,train/kl,train/entropy_loss\n10,0.5,0.1,-2.0\n20,0.7,0.2,-1.5\n")
    from textgym.plotting import read_progress

    data = read_progress(csv)
    reward, kl, entropy = (panel_values(data, columns) for columns, _ in PANELS)
    assert reward == [0.5, 0.7] and kl == [0.1, 0.2] and entropy == [2.0, 1.5]
    assert panel_values({"train/entropy": [3.0]}, PANELS[2][0]) == [3.0]  # a run logged before the rename
    assert plot_training_curves(csv, tmp_path / "curves.png").is_file()
