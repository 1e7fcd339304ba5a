package domain

import (
	"unicode"
	"unicode/utf8"
)

// validID reports whether s matches [A-Za-z0-9._:-]{1,128}: the shape of room,
// alert and notification ids, which become parts of stream names.
func validID(s string) bool {
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9',
			c == '.', c == '_', c == ':', c == '-':
		default:
			return false
		}
	}
	return true
}

// ValidRoomID reports whether id is a well-formed room id.
func ValidRoomID(id string) bool { return validID(id) }

// printable reports whether s is valid UTF-8 of graphic characters only (no
// spaces, controls or invalid bytes), at most max bytes and not empty.
func printable(s string, max int) bool {
	if len(s) == 0 || len(s) > max || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if !unicode.IsGraphic(r) || unicode.IsSpace(r) {
			return false
		}
	}
	return true
}

// ValidateUserID checks a user id (a token's sub, a DM recipient, a member to
// add): 1 to 256 bytes of printable UTF-8, no spaces, no '~'. User ids become
// parts of stream names, and DMStream joins two of them with '~', so a '~'
// inside one would let two different pairs share a conversation. The
// transport should refuse such a token at authentication.
func ValidateUserID(id string) error {
	if !printable(id, maxUserIDBytes) {
		return ErrInvalidUserID.Withf("%q", truncate(id))
	}
	for i := 0; i < len(id); i++ {
		if id[i] == '~' {
			return ErrInvalidUserID.Withf("%q", truncate(id))
		}
	}
	return nil
}

// validateContent checks message text: not empty, valid UTF-8, at most max
// bytes. Size is checked before encoding so that a huge invalid payload is
// reported as too large, the cheaper and more useful answer.
func validateContent(s string, max int) error {
	if s == "" {
		return ErrEmptyContent
	}
	if len(s) > max {
		return ErrContentTooLarge.Withf("%d bytes, limit %d", len(s), max)
	}
	if !utf8.ValidString(s) {
		return ErrInvalidUTF8
	}
	return nil
}

func validateRoomID(id string) error {
	if id == "" {
		return ErrInvalidRoomID.Withf("roomId is required")
	}
	if !validID(id) {
		return ErrInvalidRoomID.Withf("%q", truncate(id))
	}
	return nil
}

func validateClientMsgID(id string) error {
	if id == "" {
		return nil
	}
	if !printable(id, maxClientMsgIDBytes) {
		return ErrInvalidClientMsgID
	}
	return nil
}

// validateText checks a free-text field such as a reason: optional, valid
// UTF-8, bounded.
func validateText(field, s string, max int) error {
	if len(s) > max || !utf8.ValidString(s) {
		return ErrInvalidText.Withf("%s must be at most %d bytes of UTF-8", field, max)
	}
	return nil
}

// truncate keeps error messages short when echoing client input.
func truncate(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

func knownRole(r Role) bool {
	switch r {
	case RoleNurse, RolePhysician, RoleStaff, RoleAdmin, RoleSuperAdmin, RoleComplianceOfficer, RoleService:
		return true
	}
	return false
}
