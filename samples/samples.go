// Package samples holds the orchestrations of the Durable Functions
// "custom orchestration status" article, with the same names and values.
// `jetflow dev` registers them.
//
//   - E1_HelloSequence calls E1_SayHello for Tokyo, Seattle and London,
//     setting the custom status to each city after its call.
//   - CityRecommender recommends cities for input 1, 2 or 3 and waits for
//     the CitySelected event.
//   - ReserveTicket offers a discount and waits up to discountTimeout
//     seconds for BookingConfirmed (a durable timer).
//   - SetStatusTest sets a structured status and waits for Done.
package samples

import (
	"errors"
	"fmt"
	"hash/fnv"
	"time"

	"github.com/jetflow/jetflow"
)

// Options tunes the samples.
type Options struct {
	// DiscountTimeout is how long ReserveTicket waits for BookingConfirmed.
	// Defaults to 60 seconds.
	DiscountTimeout time.Duration
}

// Register adds the samples' orchestrators and activities to r.
func Register(r *jetflow.Registry, opts Options) error {
	if opts.DiscountTimeout == 0 {
		opts.DiscountTimeout = 60 * time.Second
	}
	for name, o := range map[string]jetflow.Orchestrator{
		"E1_HelloSequence": HelloSequence,
		"CityRecommender":  CityRecommender,
		"ReserveTicket":    reserveTicket(opts.DiscountTimeout),
		"SetStatusTest":    SetStatusTest,
		"FanOutFanIn":      FanOutFanIn,
		"Delay":            Delay,
	} {
		if err := r.AddOrchestrator(name, o); err != nil {
			return err
		}
	}
	for name, a := range map[string]jetflow.Activity{
		"E1_SayHello":       SayHello,
		"CalculateDiscount": CalculateDiscount,
		"Square":            Square,
	} {
		if err := r.AddActivity(name, a); err != nil {
			return err
		}
	}
	return nil
}

// HelloSequence greets three cities in order and shows the city it is at
// as its custom status. Output: ["Hello Tokyo!","Hello Seattle!","Hello London!"].
func HelloSequence(ctx *jetflow.OrchestrationContext) (any, error) {
	var out []string
	for _, city := range []string{"Tokyo", "Seattle", "London"} {
		var greeting string
		if err := ctx.CallActivity("E1_SayHello", city).Await(&greeting); err != nil {
			return nil, err
		}
		out = append(out, greeting)
		if err := ctx.SetCustomStatus(city); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// SayHello returns "Hello {city}!".
func SayHello(ctx *jetflow.ActivityContext) (any, error) {
	var city string
	if err := ctx.GetInput(&city); err != nil {
		return nil, err
	}
	return "Hello " + city + "!", nil
}

// Recommendation is CityRecommender's custom status.
type Recommendation struct {
	RecommendedCities  []string `json:"recommendedCities"`
	RecommendedSeasons []string `json:"recommendedSeasons"`
}

// CityRecommender shows recommended cities and seasons for input 1, 2 or 3
// as its custom status, then waits for the CitySelected event and returns
// the city chosen.
func CityRecommender(ctx *jetflow.OrchestrationContext) (any, error) {
	var choice int
	if err := ctx.GetInput(&choice); err != nil {
		return nil, fmt.Errorf("input must be 1, 2 or 3: %w", err)
	}
	var rec Recommendation
	switch choice {
	case 1:
		rec = Recommendation{[]string{"Tokyo", "Seattle"}, []string{"Spring", "Summer"}}
	case 2:
		rec = Recommendation{[]string{"Seattle", "London"}, []string{"Summer"}}
	case 3:
		rec = Recommendation{[]string{"Tokyo", "London"}, []string{"Spring", "Summer"}}
	default:
		return nil, fmt.Errorf("input must be 1, 2 or 3, not %d", choice)
	}
	if err := ctx.SetCustomStatus(rec); err != nil {
		return nil, err
	}
	var city string
	if err := ctx.WaitForExternalEvent("CitySelected").Await(&city); err != nil {
		return nil, err
	}
	return city, nil
}

// DiscountOffer is ReserveTicket's first custom status.
type DiscountOffer struct {
	Discount        int    `json:"discount"`
	DiscountTimeout int    `json:"discountTimeout"`
	BookingURL      string `json:"bookingUrl"`
}

// Message is a custom status holding one message.
type Message struct {
	Message string `json:"message"`
}

func reserveTicket(timeout time.Duration) jetflow.Orchestrator {
	return func(ctx *jetflow.OrchestrationContext) (any, error) {
		var userID string
		if err := ctx.GetInput(&userID); err != nil {
			return nil, err
		}
		var discount int
		if err := ctx.CallActivity("CalculateDiscount", userID).Await(&discount); err != nil {
			return nil, err
		}
		if err := ctx.SetCustomStatus(DiscountOffer{
			Discount:        discount,
			DiscountTimeout: int(timeout / time.Second),
			BookingURL:      "https://www.myawesomebookingweb.com",
		}); err != nil {
			return nil, err
		}
		var confirmed bool
		err := ctx.WaitForExternalEvent("BookingConfirmed", jetflow.WithTimeout(timeout)).Await(&confirmed)
		if err != nil && !errors.Is(err, jetflow.ErrTimeout) {
			return nil, err
		}
		if confirmed {
			return true, ctx.SetCustomStatus(Message{"Thank you for confirming your booking."})
		}
		return false, ctx.SetCustomStatus(Message{"The booking was not confirmed on time. Please try again."})
	}
}

// CalculateDiscount returns a discount percentage derived from the user
// id: the same user always gets the same discount, from 5 to 50 in steps
// of 5.
func CalculateDiscount(ctx *jetflow.ActivityContext) (any, error) {
	var userID string
	if err := ctx.GetInput(&userID); err != nil {
		return nil, err
	}
	return Discount(userID), nil
}

// Discount is CalculateDiscount's value for a user id.
func Discount(userID string) int {
	h := fnv.New32a()
	h.Write([]byte(userID))
	return 5 * (1 + int(h.Sum32()%10))
}

// NextActions is SetStatusTest's custom status.
type NextActions struct {
	NextActions []string `json:"nextActions"`
	Foo         int      `json:"foo"`
}

// SetStatusTest shows {"nextActions":["A","B","C"],"foo":2} and completes
// when the Done event arrives.
func SetStatusTest(ctx *jetflow.OrchestrationContext) (any, error) {
	status := NextActions{NextActions: []string{"A", "B", "C"}, Foo: 2}
	if err := ctx.SetCustomStatus(status); err != nil {
		return nil, err
	}
	return nil, ctx.WaitForExternalEvent("Done").Await(nil)
}
