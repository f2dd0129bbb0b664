"""Language-goal families: many goals from a few objects, colours and sentence templates.

Baumli et al. ("Vision-Language Models as a Source of Rewards", arXiv:2312.09187) train one agent
on thousands of language goals generated from templates (Find, Lift, Pick-and-place objects in a
3D house) and reward each goal with the contrastive probability of its sentence against the
*other goals of the family*. This module describes such a family, independent of any simulator
or model:

* a :class:`GoalObject` is a coloured object kind ("red ball");
* a :class:`Goal` is a goal type (``find``, ``lift``, ``place`` or any name a family defines),
  its object, an optional target object (``place``: "put the green box next to the yellow
  ball") and its sentence, phrased with one of the type's templates;
* a :class:`GoalFamily` holds the objects (kinds × colours, minus exclusions) and, per goal type,
  one or several templates; the first template of a type gives the canonical sentence. It
  enumerates its goals (:meth:`GoalFamily.goals`), splits them into training and held-out goals
  by object, kind, colour, template or goal type (:meth:`GoalFamily.split`) and names the
  negatives of a goal for the contrastive reward (:meth:`GoalFamily.negatives_for`).

A family is written in YAML and read with :func:`load_goal_family`::

    name: miniworld_objects
    objects:
      kinds: [box, ball, key]
      colours: [red, green, blue, yellow, purple]
      exclude: []                      # optional: "purple key", ...
    templates:                         # per goal type; the first is the canonical sentence
      find: ["go to the {object}", "find the {object}"]
      lift: ["pick up the {object}", "lift the {object}"]
      place: ["put the {object} next to the {target}", "place the {object} beside the {target}"]
    split:                             # optional: training vs held-out goals
      by: colour                       # object | kind | colour | template | goal_type
      held_out: [purple]

Template placeholders: ``{object}`` ("red ball"), ``{colour}``, ``{kind}``, and for goal types
with a target ``{target}``, ``{target_colour}``, ``{target_kind}``. A goal type whose templates
name a target has one goal per ordered pair of distinct objects; the others one goal per object.

An *app family* (Baumli et al.'s AndroidEnv goals, ``configs/goals/android_apps.yaml``) lists apps
instead of objects; each app is a :class:`GoalObject` of kind ``"app"`` whose name is the app's
display name, with its Android package and launch activity in :attr:`GoalObject.details`::

    name: android_apps
    apps:
      - {name: Calculator, package: com.google.android.calculator, activity: com.android.calculator2.Calculator}
      - {name: Clock, package: com.google.android.deskclock, activity: com.android.deskclock.DeskClock}
    templates:
      open: ["Screenshot of {app} on Android", "Open {app}"]
    split: {by: app, held_out: [Clock]}

Its templates use ``{app}`` (or ``{object}``: the same name) and no target; it splits by ``app``
(``object``), ``template`` or ``goal_type``.

This module imports neither a simulator nor a model, so rewards, environments and the offline
evaluation all use it.

The package: :mod:`vlmreward.goals.objects` (objects, goals, splits), :mod:`vlmreward.goals.family`
(the family: enumeration, splits, negatives) and :mod:`vlmreward.goals.schema` (the YAML format).
"""

from vlmreward.goals.family import GoalFamily, select_goals
from vlmreward.goals.objects import (
    APP_KIND, APP_PLACEHOLDERS, NEGATIVE_MODES, OBJECT_PLACEHOLDERS, SPLIT_BY, TARGET_PLACEHOLDERS, Goal, GoalFamilyError,
    GoalObject, GoalSplit,
)
from vlmreward.goals.schema import DEFAULT_GOAL_FAMILY, as_goal_family, load_goal_family, parse_goal_family

__all__ = [
    "GoalObject", "Goal", "GoalFamily", "GoalSplit", "GoalFamilyError", "load_goal_family", "parse_goal_family",
    "select_goals", "as_goal_family", "DEFAULT_GOAL_FAMILY", "SPLIT_BY", "NEGATIVE_MODES", "OBJECT_PLACEHOLDERS",
    "TARGET_PLACEHOLDERS", "APP_PLACEHOLDERS", "APP_KIND",
]
